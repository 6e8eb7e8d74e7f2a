// order-dispatch console: the little JavaScript it has. Everything works without it.
"use strict";
(function () {
  // The overview refreshes itself: fetch the page again and swap its live part.
  var live = document.getElementById("live");
  if (live && live.dataset.refresh) {
    var every = Math.max(2, parseInt(live.dataset.refresh, 10)) * 1000;
    setInterval(function () {
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
          if (fresh) { live.replaceChildren.apply(live, Array.from(fresh.childNodes)); }
        })
        .catch(function () { /* keep the last figures; the next turn tries again */ });
    }, every);
  }
  // Forms that destroy something ask once more.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
