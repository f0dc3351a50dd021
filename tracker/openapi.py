"""The OpenAPI 3.1 description of the JSON API in api.py, served at /api/openapi.json.

It states what the code does, limits included: the length limits are the service layer's
(counted after trimming), and every status listed is one the view or the service can return.
The text is written here, not taken from api.py's docstrings, so editing a view's docstring
leaves the public document alone.
"""
from __future__ import annotations

from .i18n import DEFAULT_LANGUAGE, LANGUAGES
from .models import (
    DRAFT,
    ENTRY_STATES,
    MAX_ALT,
    MAX_API_PAGE,
    MAX_BODY,
    MAX_CAPTION,
    MAX_CREDIT,
    MAX_HEADLINE,
    MAX_ID,
    MAX_IMAGE_URL,
    MAX_MEDIA_PER_ENTRY,
    MAX_NOTE,
    MAX_REV,
    MAX_SLUG,
    MAX_SUMMARY,
    MAX_TITLE,
    ORDERS,
    PUBLISHED,
    SCHEDULED,
    STATUSES,
    SUBMITTED,
)

JSON = "application/json"
DESCRIPTION = """The JSON API for newsroom tools: public reads, writes with `Authorization: Bearer <token>`.

Writes go through the same service layer as the editor's forms, so they take revisions and
broadcast the same events. Cookies are never consulted here: a logged-in browser session
grants nothing, so the API cannot be driven cross-site.

Errors are JSON: `{"ok": false, "error": "..."}`; a method a path does not have is a 405 with the same body."""
TIMESTAMP = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 with milliseconds and a Z."}
NULLABLE_TIMESTAMP = {**TIMESTAMP, "type": ["string", "null"]}
# A character that survives trimming and the removal of control and bidi characters (sanitize.clean_text):
# text made only of other characters counts as empty.
VISIBLE = r"[^\s\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]"
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_OR_EMPTY = r"^(?:[a-z0-9]+(?:-[a-z0-9]+)*)?$"
# http(s) with a plain ASCII host part; anything else is refused (422).
IMAGE_URL = r"^(?:[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][\x21-\x7e]*)?)?$"


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": _ref("schemas", "Error")}}}


def _ok(description: str, schema: dict, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _wrap(name: str, schema: dict) -> dict:
    return {"type": "object", "required": [name], "properties": {name: schema}, "additionalProperties": False}


def _body(schema_name: str) -> dict:
    return {"required": True, "content": {JSON: {"schema": _ref("schemas", schema_name)}}}


def _errors(*statuses: int) -> dict:
    return {str(status): _ref("responses", ERROR_RESPONSES[status][0]) for status in statuses}


ERROR_RESPONSES = {
    400: ("BadRequest", "The request is malformed: not a JSON object, or a bad paging argument."),
    401: ("Unauthorized", "No valid bearer token was sent."),
    403: ("Forbidden", "The token belongs to a contributor, who may only write drafts, submit them and change their "
                       "own unpublished entries."),
    404: ("NotFound", "There is no such story or entry."),
    409: ("Conflict", "The slug is taken (creating a story), the story has ended (publishing or scheduling an "
                      "entry), or the entry is already published."),
    410: ("Gone", "The entry was deleted; it can no longer be changed."),
    412: ("Changed", "The entry changed since the version in If-Match; nothing was saved. `current` is the "
                     "entry as it is now."),
    413: ("TooLarge", "A field is over its limit, the request body is over 256 KiB, or an image is over "
                      "MEDIA_MAX_BYTES or MEDIA_MAX_PIXELS."),
    415: ("Unsupported", "The file is not a JPEG, PNG, WebP or GIF image, or it is damaged."),
    422: ("Unprocessable", "A field is unknown, of the wrong type or has a value the service refuses."),
    429: ("TooManyRequests", "Over UPLOAD_RATE_LIMIT: too many uploads with this token's address; try again later."),
    503: ("Busy", "The database refused the change; nothing was saved, try again."),
}

WRITE = [{"bearerAuth": []}]
ORDER = {"type": "string", "enum": list(ORDERS), "description": "The reading order readers get unless they choose "
         "their own: the newest update first, or the oldest first (a timeline, a Q&A)."}
LANGUAGE = {"type": "string", "enum": list(LANGUAGES), "description": "The story pages' language: their interface, "
            "`lang`, writing direction and dates."}
SLUG_PARAM = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
MEDIA_ID_PARAM = {"name": "media_id", "in": "path", "required": True,
                  "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}
ENTRY_ID_PARAM = {"name": "entry_id", "in": "path", "required": True,
                  "description": "An entry id: 1 to 18 digits; longer is a 404.",
                  "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}


def _story_properties() -> dict:
    return {
        "slug": {"type": "string", "pattern": SLUG, "maxLength": MAX_SLUG},
        "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
        "summary": {"type": "string", "maxLength": MAX_SUMMARY},
        "image_url": {"type": "string", "maxLength": MAX_IMAGE_URL},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "status": {"type": "string", "enum": list(STATUSES)},
        "order": ORDER,
        "language": LANGUAGE,
        "rev": {"type": "integer", "minimum": 1, "description": "The story's latest revision."},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "ended_at": NULLABLE_TIMESTAMP,
        "image_media": {"type": ["integer", "null"], "description": "The id of an uploaded lead image."},
        "image": {"oneOf": [_ref("schemas", "Media"), {"type": "null"}], "description": "The uploaded lead image "
                  "(`image_media`), or null."},
        "url": {"type": "string", "pattern": "^/stories/", "description": "The story's public page."},
    }


def _schemas() -> dict:
    story = _story_properties()
    overview = {**story, "latest_at": {**TIMESTAMP, "description": "The latest visible entry's time, else the "
                                                                    "story's creation time."},
                "entries": {"type": "integer", "minimum": 0, "description": "Visible entries."}}
    headline = {"type": "string", "maxLength": MAX_HEADLINE}
    body = {"type": "string", "pattern": VISIBLE, "maxLength": MAX_BODY,
            "description": "Markdown; trimmed; it must contain visible text. Over the limit is a 413."}
    title = {"type": "string", "pattern": VISIBLE, "maxLength": MAX_TITLE,
             "description": "Trimmed; it must contain visible text. Over the limit is a 413."}
    summary = {"type": "string", "maxLength": MAX_SUMMARY, "description": "Over the limit is a 413."}
    image_url = {"type": "string", "maxLength": MAX_IMAGE_URL, "pattern": IMAGE_URL,
                 "description": "An http:// or https:// address, or empty for none. Over the limit is a 413."}
    status = {"type": "string", "enum": list(STATUSES)}
    flag = {"type": "boolean"}
    publish_at = {"type": ["string", "null"], "format": "date-time",
                  "description": "ISO 8601 with a time zone, in the future."}
    media_id = {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "An uploaded image's id "
                "(POST /api/media)."}
    media_ids = {"type": "array", "items": media_id, "maxItems": MAX_MEDIA_PER_ENTRY,
                 "description": "The images it shows, in order (an empty list shows none)."}
    reading = {"readers": {"type": "integer", "minimum": 0, "description": "How many are reading it now, over "
                           "every process (GET answers only; refreshed every READERS_SECONDS with a message queue)."}}
    return {
        "Story": {"type": "object", "required": list(story), "properties": {**story, **reading},
                  "additionalProperties": False},
        "StoryOverview": {"type": "object", "required": [*overview, "readers"], "properties": {**overview, **reading},
                          "additionalProperties": False},
        "Entry": {
            "type": "object",
            "description": "A deleted entry keeps only what readers need to drop it: empty text, no author, "
                           "pinned and key false.",
            "required": ["id", "rev", "story", "headline", "html", "author", "created_at", "updated_at",
                         "edited_at", "pinned", "key", "deleted", "excerpt", "url", "status", "media"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "rev": {"type": "integer", "description": "Published: the story revision of the entry's last "
                                                          "change. Unpublished: minus the number of its changes."},
                "media": {"type": "array", "items": _ref("schemas", "Media"),
                          "description": "The images it shows, in order."},
                "status": {"type": "string", "enum": list(ENTRY_STATES),
                           "description": "Only published entries are ever shown to readers."},
                "publish_at": {**TIMESTAMP, "description": "When a scheduled entry publishes itself."},
                "review_note": {"type": "string", "description": "Why an editor sent the entry back to its writer."},
                "story": {"type": "string", "description": "The story's slug."},
                "headline": {"type": "string"},
                "html": {"type": "string", "description": "The body rendered from Markdown and sanitized."},
                "author": {"type": ["string", "null"],
                           "description": "The writer's display name, or an imported post's byline; null for an "
                                          "entry made with a token that belongs to no person."},
                "created_at": {**TIMESTAMP, "description": "When it was published (unpublished: created)."},
                "updated_at": TIMESTAMP,
                "edited_at": {**NULLABLE_TIMESTAMP, "description": "When the text was last corrected."},
                "pinned": flag,
                "key": flag,
                "deleted": flag,
                "excerpt": {"type": "string"},
                "url": {"type": "string", "pattern": "^/stories/[^/]+/entries/[0-9]+$"},
            },
            "additionalProperties": False,
        },
        "Media": {
            "type": "object",
            "required": ["id", "url", "width", "height", "alt", "caption", "credit", "variants"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "url": {"type": "string", "pattern": "^/media/", "description": "The largest variant in the "
                                                                               "fallback format."},
                "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
                "alt": {"type": "string"}, "caption": {"type": "string"}, "credit": {"type": "string"},
                "variants": {"type": "array", "description": "Widths ascending, each in WebP and in JPEG (PNG "
                                                             "for images with transparency).",
                             "items": {"type": "object", "required": ["url", "width", "height", "type"],
                                       "properties": {"url": {"type": "string"}, "width": {"type": "integer"},
                                                      "height": {"type": "integer"},
                                                      "type": {"enum": ["image/webp", "image/jpeg", "image/png"]}},
                                       "additionalProperties": False}},
            },
            "additionalProperties": False,
        },
        "MediaUpload": {
            "type": "object",
            "required": ["file", "alt"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "A JPEG, PNG, WebP or GIF (its first frame), checked by its content."},
                "alt": {"type": "string", "pattern": VISIBLE, "maxLength": MAX_ALT,
                        "description": "What the image shows; required. Over a limit is a 413."},
                "caption": {"type": "string", "maxLength": MAX_CAPTION},
                "credit": {"type": "string", "maxLength": MAX_CREDIT},
            },
        },
        "MediaUpdate": {
            "type": "object",
            "description": "Only the fields sent change.",
            "properties": {"alt": {"type": "string", "pattern": VISIBLE, "maxLength": MAX_ALT},
                           "caption": {"type": "string", "maxLength": MAX_CAPTION},
                           "credit": {"type": "string", "maxLength": MAX_CREDIT}},
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "required": ["ok", "error"],
            "properties": {
                "ok": {"const": False},
                "error": {"type": "string", "description": "A message a person can act on."},
                "field": {"type": ["string", "null"], "description": "The field at fault (refused changes only)."},
            },
            "additionalProperties": False,
        },
        "StoryCreate": {
            "type": "object",
            "required": ["title"],
            "properties": {
                "title": title,
                "slug": {"type": "string", "maxLength": MAX_SLUG, "pattern": SLUG_OR_EMPTY,
                         "description": "Empty or absent: derived from the title. Trimmed and lowercased; "
                                        "over the limit or malformed is a 422."},
                "summary": summary,
                "image_url": image_url,
                "status": {**status, "default": "live"},
                "order": {**ORDER, "default": "newest"},
                "language": {**LANGUAGE, "default": DEFAULT_LANGUAGE},
                "image_media": {**media_id, "type": ["integer", "null"], "description": "An uploaded image's id "
                                "as the lead image (null: none)."},
            },
            "additionalProperties": False,
        },
        "StoryUpdate": {
            "type": "object",
            "description": "Only the fields sent change.",
            "properties": {"title": title, "summary": summary, "image_url": image_url, "status": status,
                           "order": ORDER, "language": LANGUAGE,
                           "image_media": {**media_id, "type": ["integer", "null"], "description":
                                           "An uploaded image's id as the lead image (null: no change)."}},
            "additionalProperties": False,
        },
        "EntryCreate": {
            "type": "object",
            "required": ["body"],
            "properties": {"body": body, "headline": headline, "key": {**flag, "default": False},
                           "pinned": {**flag, "default": False,
                                      "description": "Pinning an entry unpins the story's other one."},
                           "status": {"type": "string", "enum": [PUBLISHED, DRAFT, SUBMITTED, SCHEDULED],
                                      "description": "Default: published for editors and tokens of no person, "
                                                     "submitted for contributors (who may not ask for published)."},
                           "publish_at": {**publish_at, "description": "Schedules the entry (editors only)."},
                           "media": media_ids},
            "additionalProperties": False,
        },
        "EntryUpdate": {
            "type": "object",
            "description": "Only the fields sent change; a changed body or headline is a correction.",
            "properties": {"body": body, "headline": headline, "key": flag, "pinned": flag,
                           "status": {"type": "string", "enum": [SUBMITTED, DRAFT, PUBLISHED],
                                      "description": "An unpublished entry's next step: submitted (its writer "
                                                     "or an editor), draft (sent back, with `note`) or published."},
                           "publish_at": {**publish_at, "description": "(Re)schedules an unpublished entry."},
                           "note": {"type": "string", "maxLength": MAX_NOTE,
                                    "description": "Why the entry goes back to its writer (with status draft)."},
                           "media": media_ids},
            "additionalProperties": False,
        },
    }


def spec() -> dict:
    """The OpenAPI document of the JSON API."""
    story_ok = _ok("The story.", _wrap("story", _ref("schemas", "Story")))
    entry_schema = _wrap("entry", _ref("schemas", "Entry"))
    entry_ok = _ok("The entry.", entry_schema)
    etag = {"ETag": {"required": True, "description": "The entry's version; send it as If-Match to correct it.",
                     "schema": {"type": "string", "pattern": '^"-?[0-9]+"$'}}}
    tagged_ok = _ok("The entry, with its version.", entry_schema, etag)
    if_match = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                "description": "The ETag the change started from: applied only if the entry is still at that "
                               "version, else 412 with the entry as it is now."}
    entry_location = {"Location": {"required": True, "description": "The entry's public page.",
                                   "schema": {"type": "string", "pattern": "^/stories/[^/]+/entries/[0-9]+$"}}}
    page = {"rev": {"type": "integer", "minimum": 0}, "entries": {"type": "array", "items": _ref("schemas", "Entry")}}
    cursor = {"type": ["integer", "null"]}
    entries_ok = _ok("A page of entries; the cursor is null on the last page.", {"oneOf": [
        {"type": "object", "title": "Newest first", "required": ["rev", "entries", "next_before"],
         "properties": {**page, "next_before": {**cursor, "description": "Pass as `before` for the next page."}},
         "additionalProperties": False},
        {"type": "object", "title": "Changes since a revision", "required": ["rev", "entries", "next_after_rev"],
         "properties": {**page, "next_after_rev": {**cursor, "description": "Pass as `after_rev` for more."}},
         "additionalProperties": False},
    ]})
    story_action = {
        "security": WRITE, "parameters": [SLUG_PARAM],
        "responses": {"200": story_ok, **_errors(401, 403, 404, 503)},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tracker API",
            "version": "1",
            "description": DESCRIPTION,
        },
        "paths": {
            "/api/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": _ok("The OpenAPI document.", {"type": "object", "required": ["openapi"]})},
            }},
            "/api/stories": {
                "get": {
                    "operationId": "listStories",
                    "summary": "Every story, live ones first, with its latest update time and entry count.",
                    "responses": {"200": _ok("Every story.", _wrap("stories", {
                        "type": "array", "items": _ref("schemas", "StoryOverview")}))},
                },
                "post": {
                    "operationId": "createStory", "summary": "Create a story.", "security": WRITE,
                    "requestBody": _body("StoryCreate"),
                    "responses": {
                        "201": _ok("The new story.", _wrap("story", _ref("schemas", "Story")), {"Location": {
                            "required": True, "description": "The story in this API.",
                            "schema": {"type": "string", "pattern": "^/api/stories/[a-z0-9-]+$"}}}),
                        **_errors(400, 401, 403, 409, 413, 422),
                    },
                },
            },
            "/api/stories/{slug}": {
                "parameters": [SLUG_PARAM],
                "get": {
                    "operationId": "getStory", "summary": "One story's state.",
                    "responses": {"200": story_ok, **_errors(404)},
                },
                "patch": {
                    "operationId": "updateStory",
                    "summary": "Change a story's title, summary, lead image, status or reading order.",
                    "security": WRITE,
                    "requestBody": _body("StoryUpdate"),
                    "responses": {"200": story_ok, **_errors(400, 401, 403, 404, 413, 422, 503)},
                },
            },
            "/api/stories/{slug}/end": {"post": {
                "operationId": "endStory", "summary": "End a story (no change if it has ended).", **story_action}},
            "/api/stories/{slug}/reopen": {"post": {
                "operationId": "reopenStory", "summary": "Reopen a story (no change if it is live).", **story_action}},
            "/api/stories/{slug}/entries": {
                "parameters": [SLUG_PARAM],
                "get": {
                    "operationId": "listEntries", "summary": "Entries by cursor.",
                    "description": "Entries by cursor: `after_rev` gives every change since a revision, oldest "
                                   "first (deleted ones included), in pages of at most `limit` entries and about "
                                   "CATCHUP_PAGE_BYTES; otherwise visible entries newest first, `before` an entry id.",
                    "parameters": [
                        {"name": "limit", "in": "query", "allowEmptyValue": True,
                         "description": "Page size; 0 or empty means 20.",
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_API_PAGE, "default": 20}},
                        {"name": "after_rev", "in": "query", "allowEmptyValue": True,
                         "description": "Every change after this story revision, oldest first, deleted entries "
                                        "included; `before` is then ignored.",
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_REV}},
                        {"name": "before", "in": "query", "allowEmptyValue": True,
                         "description": "The id of the last entry already shown (`next_before`); an id not in this "
                                        "story is a 400.",
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}},
                    ],
                    "responses": {"200": entries_ok, **_errors(400, 404)},
                },
                "post": {
                    "operationId": "appendEntry", "summary": "Publish an entry.",
                    "description": "A repeated `Idempotency-Key` returns the entry it first made, with a 200, "
                                   "even if the story has ended since.",
                    "security": WRITE,
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "description": "Trimmed; its first 64 characters count; empty means none.",
                                    "schema": {"type": "string"}}],
                    "requestBody": _body("EntryCreate"),
                    "responses": {
                        "201": _ok("The new entry.", entry_schema, entry_location),
                        "200": _ok("The entry this Idempotency-Key made before.", entry_schema, entry_location),
                        **_errors(400, 401, 403, 404, 409, 413, 422, 503),
                    },
                },
            },
            "/api/media": {"post": {
                "operationId": "uploadMedia", "summary": "Upload an image, with its alt text, caption and credit.",
                "description": "Stored re-encoded, without any metadata (EXIF, GPS, XMP, IPTC, comments), in "
                               "widths of 480, 960 and 1600 pixels (never wider than the upload). Attach it to "
                               "an entry with `media`, or to a story with `image_media`.",
                "security": WRITE,
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": _ref("schemas", "MediaUpload")}}},
                "responses": {"201": _ok("The image.", _wrap("media", _ref("schemas", "Media")),
                                         {"Location": {"required": True, "schema": {"type": "string"}}}),
                              **_errors(401, 413, 415, 422, 429, 503)},
            }},
            "/api/media/{media_id}": {"patch": {
                "operationId": "updateMedia",
                "summary": "Correct an image's alt text, caption or credit; the updates showing it reach readers "
                           "again.",
                "security": WRITE,
                "parameters": [MEDIA_ID_PARAM],
                "requestBody": _body("MediaUpdate"),
                "responses": {"200": _ok("The image.", _wrap("media", _ref("schemas", "Media"))),
                              **_errors(400, 401, 403, 404, 413, 422, 503)},
            }, "delete": {
                "operationId": "deleteMedia",
                "summary": "Take an image down: it leaves every update and story showing it (readers' pages drop "
                           "it live), and its files are deleted.",
                "security": WRITE,
                "parameters": [MEDIA_ID_PARAM],
                "responses": {"204": {"description": "Deleted."}, **_errors(401, 403, 404, 503)},
            }},
            "/api/stories/{slug}/drafts": {"get": {
                "operationId": "listDrafts", "summary": "The story's unpublished entries (a contributor's: their own).",
                "description": "Scheduled ones first, by time; then drafts and submissions, the latest changed first.",
                "security": WRITE, "parameters": [SLUG_PARAM],
                "responses": {"200": _ok("The unpublished entries.", _wrap("entries", {
                    "type": "array", "items": _ref("schemas", "Entry")})), **_errors(401, 404)},
            }},
            "/api/entries/{entry_id}/publish": {"post": {
                "operationId": "publishEntry",
                "summary": "Publish a draft, submission or scheduled entry now (editors).",
                "description": "Readers get it as a new update stamped with this time, exactly once.",
                "security": WRITE, "parameters": [ENTRY_ID_PARAM, if_match],
                "responses": {"200": tagged_ok, **_errors(401, 403, 404, 409, 410, 412, 503)},
            }},
            "/api/entries/{entry_id}": {
                "parameters": [ENTRY_ID_PARAM],
                "get": {
                    "operationId": "getEntry", "summary": "One entry, with its version as the ETag.",
                    "description": "Public for published entries; an unpublished one needs a token (a "
                                   "contributor's: their own), and without an Authorization header is a 404.",
                    "responses": {"200": tagged_ok, **_errors(401, 403, 404, 410)},
                },
                "patch": {
                    "operationId": "updateEntry",
                    "summary": "Correct an entry's text, pin or unpin it, mark or unmark it as a key event.",
                    "security": WRITE,
                    "parameters": [if_match],
                    "requestBody": _body("EntryUpdate"),
                    "responses": {"200": tagged_ok, **_errors(400, 401, 403, 404, 409, 410, 412, 413, 422, 503)},
                },
                "delete": {
                    "operationId": "deleteEntry", "summary": "Soft-delete an entry (no change if it is deleted).",
                    "security": WRITE,
                    "responses": {"200": entry_ok, **_errors(401, 403, 404, 503)},
                },
            },
        },
        "components": {
            "schemas": _schemas(),
            "responses": {name: _error_response(description) for name, description in ERROR_RESPONSES.values()}
            | {"Unauthorized": {**_error_response(ERROR_RESPONSES[401][1]), "headers": {"WWW-Authenticate": {
                "required": True, "schema": {"type": "string", "pattern": "^Bearer "}}}},
               "Changed": _ok(ERROR_RESPONSES[412][1], {
                   "type": "object", "required": ["ok", "error", "current"], "additionalProperties": False,
                   "properties": {**_schemas()["Error"]["properties"], "current": _ref("schemas", "Entry")}})},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "A token from `flask token create NAME`."}},
        },
    }
