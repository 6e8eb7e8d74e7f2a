"""The job store's shared definitions: each fact about the record is written once."""

from __future__ import annotations

import re
from typing import get_args

from order_dispatch.contract import EventStatus
from order_dispatch.keys import DEAD_LETTER_STATUSES, terminal_status
from order_dispatch.store import KEPT_FOR_REPLAY, DeadStatus, lua


def test_the_dead_letter_statuses_are_one_list() -> None:
    assert get_args(DeadStatus) == DEAD_LETTER_STATUSES
    assert {s.value for s in KEPT_FOR_REPLAY} == set(DEAD_LETTER_STATUSES)
    assert {EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT} == KEPT_FOR_REPLAY


def test_the_terminal_marker_says_how_its_run_ended() -> None:
    assert terminal_status("job-1:2.abcdef12:3:in_doubt") == "in_doubt"
    assert terminal_status("sourceorders:default:create:0a1b:1.t0000000:1:accepted") == "accepted"
    assert terminal_status(None) is None


def test_each_lua_fragment_is_defined_once_and_every_script_uses_the_fragments() -> None:
    scripts = {name: getattr(lua, name) for name in dir(lua) if name.isupper()}
    source = "\n".join(v for k, v in scripts.items() if k.endswith("_FN"))
    for fragment in ("add_event", "push_timeline", "set_outcome", "mark_in_flight", "admit"):
        assert len(re.findall(rf"local function {fragment}\(", source)) == 1, fragment
    writers = [v for k, v in scripts.items() if not k.endswith("_FN")]
    # Outside the fragment, no script appends a result event by itself.
    assert any(lua.EVENT_FN in script for script in writers)
    for script in writers:
        assert "'XADD'" not in script.replace(lua.EVENT_FN, "")
