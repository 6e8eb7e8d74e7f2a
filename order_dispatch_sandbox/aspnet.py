"""ASP.NET Web API's answers, as the vendors built on it give them (Sophio's ShipStation API,
SellerCloud, SupplyStream's iHub): ``{"Message": ...}`` errors (401, 415, ...), and 400 "The
request is invalid." with the ModelState of a body that Json.NET could not bind.

For a body bound by a pydantic model, validators raise :func:`conversion` where Json.NET's
conversion fails (the ModelState shows it with Json.NET's ``Path '...'`` after it) and
:func:`problem` for a validation attribute; :data:`Required` and :data:`RequiredObject` are the
``[Required]`` attribute; :func:`model_state` turns the ValidationError into the ModelState.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from order_dispatch_sandbox.base import json_path, json_response

DENIED = "Authorization has been denied for this request."
INVALID = "The request is invalid."

_T = TypeVar("_T")


def message(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error answer ``{"Message": text}``."""
    return json_response({"Message": text}, status=status, headers=headers)


def unsupported(request: web.Request) -> web.Response:
    """The 415 answer to a body in a media type the action does not read."""
    if request.headers.get("Content-Type"):
        media = f"The request entity's media type '{request.content_type}'"
    else:
        media = (
            "The request contains an entity body but no Content-Type header. The inferred media "
            "type 'application/octet-stream'"
        )
    return message(415, f"{media} is not supported for this resource.")


def invalid(state: dict[str, list[str]], headers: dict[str, str] | None = None) -> web.Response:
    """The 400 answer to a request that did not bind: ``{"Message", "ModelState": state}``."""
    return json_response({"Message": INVALID, "ModelState": state}, status=400, headers=headers)


def conversion(text: str) -> PydanticCustomError:
    """A Json.NET conversion failure (``Could not convert string 'x' to integer.``)."""
    return PydanticCustomError("conversion", "{text}", {"text": text})


def problem(text: str) -> PydanticCustomError:
    """A validation attribute's failure (``The field Qty must be between 1 and 2147483647.``)."""
    return PydanticCustomError("invalid", "{text}", {"text": text})


def required(value: _T, info: ValidationInfo) -> _T:
    """The ``[Required]`` check of a member's value: null is "The <name> field is required."."""
    if value is None:
        raise problem(f"The {info.field_name} field is required.")
    return value


def _blank_is_null(value: Any) -> Any:
    # .NET's RequiredAttribute refuses strings that are empty or white space as it refuses null.
    return None if isinstance(value, str) and not value.strip() else value


#: An object member with ``[Required]``: absent or null is "The <name> field is required.".
RequiredObject = Annotated[_T, AfterValidator(required), Field(validate_default=True)]
#: A value member with ``[Required]``: blank is missing too, before any conversion is tried.
Required = Annotated[RequiredObject[_T], BeforeValidator(_blank_is_null)]


def model_state(exc: ValidationError, parameter: str) -> dict[str, list[str]]:
    """The ModelState of a body that did not bind to the action's ``parameter``:
    ``{"apiOrder.items[1].quantity": [message, ...]}``."""
    state: dict[str, list[str]] = {}
    for error in exc.errors():
        path = json_path(error["loc"])
        text = f"{error['msg']} Path '{path}'." if error["type"] == "conversion" else error["msg"]
        state.setdefault(f"{parameter}.{path}" if path else parameter, []).append(text)
    return state
