"""The two request shapes and their replies: `openai-images` (a multipart POST to images/edits, its reply's
b64_json, or a stream of partial images then the completed one) and `openai-chat-image` (a chat-completions
POST with the images as data URLs, the edit found at the profile's reply paths, a refusal read from the
reply). `RequestShapes` is mixed into ApiEditor (editor.py); it sends through Transport (transport.py)."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from http.client import HTTPException
from typing import Any

from PIL import Image

from editfleet_common.errors import InvalidInput
from editfleet_common.images import DEFAULT_MAX_PIXELS, decode_image, encode_png

from ..edits import PreparedEdit
from .failures import NoImage, ProviderRefused
from .transport import _Response, _Transient
from .wire import dig, multipart_body, put, sse_events

log = logging.getLogger(__package__)  # "editor_service.api_editor", the name its log lines always had


class RequestShapes:
    """The ApiEditor's two request shapes (see the module docstring)."""

    def _input_files(self, prepared: PreparedEdit) -> list[tuple[bytes, str]]:
        """(bytes, file name) of each input image, in a format the provider takes (converted to PNG if not)."""
        formats = set((self.profile.get("images") or {}).get("formats") or ["PNG"])
        out = []
        for i, (name, data) in enumerate(prepared.request.inputs()):
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
            if fmt not in formats:
                data = encode_png(decode_image(data, max_pixels=self.max_input_pixels, field=name))
                fmt = "PNG"
            out.append((data, f"image-{i}.{'jpg' if fmt == 'JPEG' else fmt.lower()}"))
        return out

    def _images_request(self, prepared: PreparedEdit, on_step, on_preview, should_stop, started: float):
        p = self.profile
        fields = prepared.kwargs["fields"]
        files = self._input_files(prepared)
        image_field = p["images"]["one"] if len(files) == 1 else p["images"]["several"]
        form: list[tuple[str, Any, str | None]] = [(image_field, data, name) for data, name in files]
        form.append((p.field("prompt"), prepared.request.instruction.strip(), None))
        if p.field("model"):
            form.append((p.field("model"), self.settings.model, None))
        if p.field("response_format"):
            form.append((p.field("response_format"), "b64_json", None))
        for key in ("size", "seed", "steps", "guidance", "negative_prompt"):
            if key in fields and p.field(key):
                form.append((p.field(key), str(fields[key]), None))
        for key, value in prepared.kwargs["options"].items():
            form.append((key, value if isinstance(value, str) else json.dumps(value), None))
        partials = prepared.kwargs["partial_images"]
        if partials:
            form += [("stream", "true", None), ("partial_images", str(partials), None)]
        body, content_type = multipart_body(form)

        def send():
            response = self._send("POST", p["path"], body, {"Content-Type": content_type}, stream=bool(partials))
            if response.raw is None:
                return response, self._images_reply(response)
            return response, self._images_stream(response, partials, on_step, on_preview, should_stop, started)

        return send

    def _images_reply(self, response: _Response) -> dict:
        data = self._json(response)
        items = data.get("data") if isinstance(data, dict) else None
        if not items or not isinstance(items, list) or not isinstance(items[0], dict):
            raise NoImage(self._scrub(f"the provider's reply has no image (data: {str(items)[:300]})"))
        first = items[0]
        if not first.get("b64_json"):
            raise NoImage("the provider's reply has no b64_json image" + (" (a URL instead: this provider "
                          "answers with URLs; its profile must ask for b64_json)" if first.get("url") else ""))
        return {"image": self._b64(first["b64_json"]), "usage": data.get("usage"),
                "revised_prompt": first.get("revised_prompt"), "served_model": data.get("model")}

    def _images_stream(self, response: _Response, partials: int, on_step, on_preview, should_stop, started) -> dict:
        stream = self.profile["stream"]
        count = 0
        try:
            for name, text in sse_events(response.raw, should_stop):
                if text.startswith("[DONE]"):
                    break
                try:
                    event = json.loads(text)
                except ValueError:
                    raise _Transient(f"a malformed stream event ({text[:120]!r})") from None
                kind = event.get("type") or name
                if kind == "error" or "error" in event:
                    self._raise_for_error(200, event, {})
                if kind == stream["partial_event"]:
                    count += 1
                    if on_step is not None:
                        on_step(count, partials + 1, time.perf_counter() - started)
                    if on_preview is not None and event.get("b64_json"):
                        try:
                            on_preview(count, decode_image(self._b64(event["b64_json"]),
                                                           max_pixels=DEFAULT_MAX_PIXELS, field="a partial image"))
                        except InvalidInput as exc:
                            log.warning("partial image %d not shown: %s", count, exc)
                elif kind == stream["completed_event"]:
                    if not event.get("b64_json"):
                        raise NoImage("the provider's completed event has no image")
                    if on_step is not None:
                        on_step(partials + 1, partials + 1, time.perf_counter() - started)
                    return {"image": self._b64(event["b64_json"]), "usage": event.get("usage"), "partials": count}
        except (OSError, HTTPException) as exc:
            raise _Transient(f"the stream broke: {type(exc).__name__}: {exc}") from None
        finally:
            response.raw.close()
            response.conn.close()
        raise _Transient("the stream ended without the completed image")

    def _chat_request(self, prepared: PreparedEdit):
        p = self.profile
        fields = prepared.kwargs["fields"]
        content: list[dict] = [{"type": "text", "text": prepared.request.instruction.strip()}]
        for data, name in self._input_files(prepared):
            kind = name.rsplit(".", 1)[-1]
            content.append({"type": "image_url", "image_url": {
                "url": f"data:image/{'jpeg' if kind == 'jpg' else kind};base64," + base64.b64encode(data).decode("ascii")}})
        body: dict = json.loads(json.dumps(p.get("body") or {}))
        body[p.field("model")] = self.settings.model
        body["messages"] = [{"role": "user", "content": content}]
        for key in ("size", "seed", "steps", "guidance", "negative_prompt"):
            if key in fields and p.field(key):
                put(body, p.field(key), fields[key])
        for key, value in prepared.kwargs["options"].items():
            put(body, key, value)
        data = json.dumps(body).encode()

        def send():
            response = self._send("POST", p["path"], data, {"Content-Type": "application/json"})
            return response, self._chat_reply(response)

        return send

    def _chat_reply(self, response: _Response) -> dict:
        reply_spec = self.profile["reply"]
        data = self._json(response)
        refusal = [r for r in dig(data, reply_spec.get("refusal_path", "")) if r] if reply_spec.get("refusal_path") else []
        finish = dig(data, "choices.0.finish_reason")
        if refusal or (finish and finish[0] in reply_spec.get("refusal_finish_reasons", [])):
            reason = f"refusal: {refusal[0]}" if refusal else f"finish_reason {finish[0]}"
            raise ProviderRefused(self._scrub(f"refused by {self.profile.name} ({reason})"),
                                  "content_filter" if not refusal else "refusal")
        texts = [t for t in dig(data, reply_spec["text_path"]) if isinstance(t, str) and t.strip()]
        for path in reply_spec["image_paths"]:
            for url in dig(data, path):
                if isinstance(url, str) and url.startswith("data:image/") and ";base64," in url:
                    usage = dig(data, reply_spec.get("usage_path", "usage"))
                    served = dig(data, reply_spec.get("model_path", "model"))
                    return {"image": self._b64(url.split(";base64,", 1)[1]), "usage": usage[0] if usage else None,
                            "served_model": served[0] if served else "", "text": texts[0] if texts else ""}
        if not dig(data, "choices.0"):
            raise _Transient("the reply has no choices")
        raise NoImage(self._scrub("the provider answered without an image" +
                                  (f": {texts[0][:500]!r}" if texts else " (and without text)")))
