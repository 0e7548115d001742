"""Azure's v1 inference surface: `{prefix}/openai/v1/…`, OpenAI-shaped paths.

No api-version is needed (`v1` or `preview` are accepted); `model` in the body, or in the form
for multipart uploads, is the deployment name and is checked like the classic path's. Replies
are the classic routes' own, Azure-shaped (chat streams included).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .catalogue import MODELS, model_object
from .checks import answer, deployment_rejection, v1_rejection
from .delivery import Payload, json_response
from .errors import invalid_request, missing_property
from .handlers import FORM_MEDIA, JSON_MEDIA, form_reply, read_object, text_reply, unparsable
from .state import EMULATOR_STATE
from .uploads import FormError, read_form

TEXT_OPERATIONS = ("chat/completions", "embeddings")
OPERATIONS = "|".join([*TEXT_OPERATIONS, *JSON_MEDIA, *FORM_MEDIA])


async def v1_operation(request: web.Request) -> web.StreamResponse:
    """`POST …/openai/v1/{chat/completions|embeddings|audio/…|images/…}`."""
    state = request.app[EMULATOR_STATE]
    rejection = v1_rejection(request, state)
    if rejection is not None:
        return rejection
    operation = request.match_info["operation"]
    build: Callable[[str], Payload | web.Response]
    if operation in FORM_MEDIA:
        try:
            form, heads = await read_form(request)
        except FormError as exc:
            return json_response(invalid_request(str(exc)), 400)
        model: object = form.fields.get("model")

        def build(deployment: str) -> Payload | web.Response:
            return form_reply(operation, form, heads)

    else:
        body = await read_object(request)
        if body is None:
            return unparsable()
        model = body.get("model")

        def build(deployment: str) -> Payload | web.Response:
            assert body is not None
            if operation in TEXT_OPERATIONS:
                return text_reply(operation, deployment, body, state)
            return JSON_MEDIA[operation](body)

    if not isinstance(model, str) or not model:
        return json_response(missing_property("model"), 400)
    rejection = deployment_rejection(state, model)
    return rejection or await answer(request, operation, build(model))


async def v1_models(request: web.Request) -> web.StreamResponse:
    """`GET …/openai/v1/models`: the models the resource offers (not its deployments)."""
    rejection = v1_rejection(request, request.app[EMULATOR_STATE])
    if rejection is not None:
        return rejection
    return json_response({"object": "list", "data": [model_object(m) for m in MODELS]})


async def v1_model(request: web.Request) -> web.StreamResponse:
    """`GET …/openai/v1/models/{model}`."""
    rejection = v1_rejection(request, request.app[EMULATOR_STATE])
    if rejection is not None:
        return rejection
    name = request.match_info["model"]
    if name not in MODELS:
        message = f"The model '{name}' does not exist"
        return json_response(invalid_request(message, "model", "model_not_found"), 404)
    return json_response(model_object(name))
