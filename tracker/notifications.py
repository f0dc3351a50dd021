"""Web Push for readers: the site's VAPID key, subscribing a browser to a story's key events, and the
service worker that shows them (see tracker.push).

Readers are anonymous and their pages carry no cookie, so these JSON endpoints have no CSRF token to
check (a cross-site form cannot send JSON, and no CORS is offered); they are rate limited instead.
"""
from flask import Blueprint, current_app, jsonify, send_from_directory

from . import api, push, services
from .extensions import csrf, limiter
from .models import MAX_SLUG, SLUG_RE
from .services import ServiceError
from .web import json_object, story_or_404

bp = Blueprint("notifications", __name__)
csrf.exempt(bp)
bp.register_error_handler(ServiceError, api.service_error)  # JSON with the message, as the API answers
_rate_limit = limiter.limit(lambda: current_app.config["PUSH_SUBSCRIBE_RATE_LIMIT"])


def _story(slug):
    """The story a request names, or a 404."""
    if not isinstance(slug, str) or len(slug) > MAX_SLUG or not SLUG_RE.fullmatch(slug):
        raise ServiceError("'story' must be the slug of a story.", "story")
    return story_or_404(slug)


@bp.get("/push/key")
def key():
    """The VAPID public key to subscribe with (pushManager.subscribe's applicationServerKey): {"key": base64url}."""
    return jsonify(key=push.public_key(current_app))


@bp.post("/push/subscriptions")
@_rate_limit
def subscribe():
    """Subscribe a browser to a story's key events: {"story": slug, "subscription": its PushSubscription JSON}."""
    data = json_object("story", "subscription")
    services.subscribe(_story(data.get("story")), data.get("subscription"), push.service_hosts(current_app.config))
    return jsonify(ok=True), 201


@bp.delete("/push/subscriptions")
@_rate_limit
def unsubscribe():
    """End a browser's subscription to a story ({"story", "subscription"} or {"story", "endpoint"}), or to
    every story when no story is named."""
    data = json_object("story", "subscription", "endpoint")
    subscription = data.get("subscription")
    endpoint = subscription.get("endpoint") if isinstance(subscription, dict) else data.get("endpoint")
    services.unsubscribe(endpoint, _story(data["story"]) if "story" in data else None)
    return "", 204


@bp.get("/sw.js")
def service_worker():
    """The service worker that shows pushed key events, at the root so that its scope may cover /stories/."""
    return send_from_directory(current_app.static_folder, "js/sw.js", max_age=0)
