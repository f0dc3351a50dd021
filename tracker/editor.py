"""Editor pages: the dashboard, story forms, the append form and entry controls.

Every POST works as a plain form (redirect back) and, when the page's JavaScript asks for
JSON, answers JSON instead, so the editor can publish without a page reload.
"""
import re
import uuid

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from . import queries, services
from .auth import admin_required, publisher_required
from .extensions import db, limiter
from .forms import AccountForm, ActionForm, DeskForm, EditEntryForm, EntryForm, StoryForm, UserForm
from .models import DRAFT, ID_PATTERN, PUBLISHED, SCHEDULED, SUBMITTED, User
from .services import ServiceError
from .web import entry_or_404, requested_page, story_or_404, upload, wants_json

bp = Blueprint("editor", __name__, url_prefix="/editor")


@bp.before_request
@login_required
def require_login():
    """Every editor page needs a logged-in account."""


def _failed(form, status: int = 400, current=None):
    """Answer an invalid form: JSON field errors (and the entry as it is now, after a conflict) for
    fetch, None to re-render the page."""
    if wants_json():
        message = next(iter(e for errors in form.errors.values() for e in errors), "Invalid form.")
        extra = {"current": current.to_dict()} if current is not None else {}
        return jsonify(ok=False, error=str(message), errors=form.errors, **extra), status
    return None


def _attach(form, exc: ServiceError) -> None:
    """Show a service refusal on its form field, or above the form."""
    field = getattr(form, exc.field, None) if exc.field else None
    (field.errors if field is not None else form.form_errors).append(exc.message)
    form.http_status = exc.status


def _status(form) -> int:
    """The HTTP status of a rendered form: 200, or the error's status."""
    return getattr(form, "http_status", 400) if form.errors else 200


def _refused(exc: ServiceError, target: str):
    """Answer a refused button action: JSON for fetch, else flash and redirect (a 403 is an error page)."""
    if wants_json():
        return jsonify(ok=False, error=exc.message), exc.status
    if exc.status == 403:
        abort(403, description=exc.message)
    flash(exc.message, "error")
    return redirect(target)


def _done(message: str, entry=None, target: str | None = None):
    """Answer a successful change: JSON for fetch, else flash and redirect (POST/redirect/GET)."""
    if wants_json():
        return jsonify(ok=True, message=str(message), entry=entry.to_dict() if entry else None)
    flash(str(message))
    return redirect(target or request.referrer or url_for("editor.dashboard"))


@bp.get("/")
def dashboard():
    """All stories with links to their editor pages."""
    return render_template("editor/dashboard.html", stories=queries.stories_overview())


@bp.route("/stories/new", methods=["GET", "POST"])
@publisher_required
def new_story():
    """Create a story."""
    form = StoryForm()
    if form.validate_on_submit():
        try:
            story = services.create_story(form.title.data, form.summary.data, form.slug.data,
                                          form.image_url.data, form.status.data, order=form.order.data,
                                          language=form.language.data)
        except ServiceError as exc:
            _attach(form, exc)
        else:
            flash(_("Story “%(title)s” created.", title=story.title))
            return redirect(url_for("editor.story", slug=story.slug))
    return render_template("editor/story_form.html", form=form, story=None), _status(form)


@bp.route("/stories/<slug>/settings", methods=["GET", "POST"])
@publisher_required
def story_settings(slug):
    """Edit a story's title, summary, lead image and reading order."""
    story = story_or_404(slug)
    form = StoryForm(obj=story)
    del form.slug, form.status
    if form.validate_on_submit():
        try:
            lead = upload().id if getattr(request.files.get("file"), "filename", "") else None
            services.update_story(story, form.title.data, form.summary.data, form.image_url.data, image_media=lead,
                                  order=form.order.data, language=form.language.data)
        except ServiceError as exc:
            _attach(form, exc)
        else:
            flash(_("Story saved."))
            return redirect(url_for("editor.story", slug=story.slug))
    return render_template("editor/story_form.html", form=form, story=story), _status(form)


@bp.post("/stories/<slug>/status")
@publisher_required
def story_status(slug):
    """End or reopen a story."""
    story = story_or_404(slug)
    try:
        services.set_status(story, request.form.get("status", ""))
    except ServiceError as exc:
        return _refused(exc, url_for("editor.story", slug=slug))
    return _done(_("Story ended.") if story.status == "ended" else _("Story reopened."),
                 target=url_for("editor.story", slug=slug))


# What the compose form's buttons make of a new update, and what the page then says.
INTENTS = {"publish": (PUBLISHED, _l("Update published.")), "draft": (DRAFT, _l("Draft saved.")),
           "submit": (SUBMITTED, _l("Sent to the editors for review.")),
           "schedule": (SCHEDULED, _l("Update scheduled."))}


@bp.route("/stories/<slug>", methods=["GET", "POST"])
def story(slug):
    """The story's desk: the compose form, drafts, review and schedule, and the entries with their controls."""
    story = story_or_404(slug)
    form = EntryForm()
    if form.validate_on_submit():
        status, message = INTENTS.get(request.form.get("intent", ""), (None, "Saved."))
        try:
            entry, created = services.append_entry(
                story, form.body.data, form.headline.data, author=current_user, key=form.key.data,
                pinned=form.pinned.data, idempotency_key=form.idempotency_key.data, status=status,
                publish_at=form.publish_time() if status == SCHEDULED else None, media=_form_media())
        except ServiceError as exc:
            _attach(form, exc)
        else:
            return _done(INTENTS[_intent(entry)][1] if created else _ALREADY[entry.is_published], entry,
                         url_for("editor.story", slug=slug))
    if form.errors and (answer := _failed(form, _status(form))):
        return answer
    if not form.errors:
        form.idempotency_key.data = uuid.uuid4().hex
    entries, next_cursor = requested_page(story, limit=50, include_pinned=True)
    desk = queries.desk_entries(story, None if current_user.may_publish else current_user.id)
    return render_template("editor/story.html", story=story, form=form, entries=entries, desk=desk,
                           next_cursor=next_cursor, action=ActionForm()), _status(form)


_ALREADY = {True: _l("Already published."), False: _l("Already saved.")}


def _form_media() -> list[int]:
    """The ids of the images attached to the compose form (hidden `media` fields), in order."""
    values = request.form.getlist("media")
    if not all(re.fullmatch(ID_PATTERN, value) for value in values):
        raise ServiceError("An attached image is not valid; remove it and attach it again.", "body")
    return [int(value) for value in values]


def _intent(entry) -> str:
    return next(name for name, (status, _) in INTENTS.items() if status == entry.status)


@bp.post("/preview")
def preview():
    """The compose form's text as readers would see it, rendered by the publishing path's sanitizer."""
    form = EntryForm()
    if not form.validate_on_submit():
        return _failed(form) or abort(400)
    headline, html = services.preview(form.body.data, form.headline.data)
    return jsonify(ok=True, headline=headline, html=html)


@bp.post("/media")
@limiter.limit(lambda: current_app.config["UPLOAD_RATE_LIMIT"])
def upload_media():
    """Upload an image for an update (the compose form's picker, drop and paste): JSON either way."""
    try:
        media = upload()
    except ServiceError as exc:
        return jsonify(ok=False, error=exc.message, field=exc.field), exc.status
    return jsonify(ok=True, media=media.to_dict()), 201


@bp.route("/entries/<id:entry_id>/edit", methods=["GET", "POST"])
def edit_entry(entry_id):
    """Correct an entry (the previous text is kept as a version), or change an unpublished one."""
    entry = _changeable(entry_or_404(entry_id))
    form = EditEntryForm(obj=entry, base_rev=entry.rev)
    theirs = None
    if form.validate_on_submit():
        try:
            services.edit_entry(entry, form.body.data, form.headline.data, base_rev=form.base_rev.data,
                                editor=current_user)
        except services.Changed as exc:
            theirs = exc.current
            form.base_rev.raw_data, form.base_rev.data = [], theirs.rev  # saving again overwrites, knowingly
            _attach(form, exc)
        except ServiceError as exc:
            _attach(form, exc)
        else:
            return _done(_("Correction published.") if entry.is_published else _("Saved."), entry,
                         url_for("editor.story", slug=entry.story.slug))
    if form.errors and (answer := _failed(form, _status(form), theirs)):
        return answer
    if request.method == "GET" and wants_json():
        return jsonify(ok=True, headline=entry.headline, body=entry.body, base_rev=entry.rev, entry=entry.to_dict())
    return render_template("editor/entry_form.html", form=form, entry=entry, theirs=theirs), _status(form)


def _changeable(entry):
    """The entry, if it was not deleted and the signed-in person may change it (else 410 or 403)."""
    if entry.deleted:
        abort(410, description="This update was deleted, so it can no longer be corrected.")
    try:
        services.check_may_change(entry, current_user)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    return entry


DESK_STEPS = {"publish": _l("Update published."), "submit": _l("Sent to the editors for review."),
              "return": _l("Sent back to its writer as a draft."), "schedule": _l("Update scheduled.")}


@bp.post("/entries/<id:entry_id>/<any(publish, submit, return, schedule):step>")
def desk_action(entry_id, step):
    """Move an unpublished entry along: publish it now, submit it, send it back with a note, (re)schedule it."""
    entry = entry_or_404(entry_id)
    form, target = DeskForm(), url_for("editor.story", slug=entry.story.slug)
    if not form.validate_on_submit():
        return _refused(ServiceError(next(iter(e for errs in form.errors.values() for e in errs))), target)
    base, by = form.base_rev.data, current_user
    apply = {"publish": lambda: services.publish_entry(entry, by, base),
             "submit": lambda: services.submit_entry(entry, by, base),
             "return": lambda: services.return_entry(entry, form.note.data or "", by, base),
             "schedule": lambda: services.schedule_entry(entry, form.publish_time(), by, base)}[step]
    try:
        apply()
    except ServiceError as exc:
        return _refused(exc, target)
    return _done(DESK_STEPS[step], entry, target)


@bp.post("/entries/<id:entry_id>/<any(delete, pin, unpin, key, unkey):action>")
@publisher_required
def entry_action(entry_id, action):
    """Delete, pin, unpin, mark or unmark an entry as a key event."""
    entry = entry_or_404(entry_id)
    change = {"delete": (services.delete_entry, _("Update deleted.")),
              "pin": (lambda e: services.set_pinned(e, True), _("Update pinned.")),
              "unpin": (lambda e: services.set_pinned(e, False), _("Update unpinned.")),
              "key": (lambda e: services.set_key(e, True), _("Marked as key event.")),
              "unkey": (lambda e: services.set_key(e, False), _("No longer a key event."))}
    apply, message = change[action]
    try:
        apply(entry)
    except ServiceError as exc:
        return _refused(exc, url_for("editor.story", slug=entry.story.slug))
    return _done(message, entry, url_for("editor.story", slug=entry.story.slug))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    """List accounts and create new ones (admins only)."""
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = services.create_user(form.username.data, form.password.data, form.role.data,
                                        form.display_name.data or "")
        except ServiceError as exc:
            _attach(form, exc)
        else:
            flash(_("Account %(username)s created.", username=user.username))
            return redirect(url_for("editor.users"))
    accounts = db.session.scalars(select(User).order_by(User.username))
    return render_template("editor/users.html", form=form, users=accounts, action=ActionForm(),
                           account_form=AccountForm), _status(form)


@bp.post("/users/<id:user_id>")
@admin_required
def user_account(user_id):
    """Change an account's role and display name (admins only; never your own role)."""
    user = db.session.get(User, user_id)
    form = AccountForm()
    if user is None:
        abort(404, description="There is no such account.")
    if not form.validate_on_submit():
        return _refused(ServiceError(next(iter(e for errs in form.errors.values() for e in errs))),
                        url_for("editor.users"))
    if user.id == current_user.id and form.role.data != user.role:
        return _refused(ServiceError("You cannot change your own role; ask another admin."), url_for("editor.users"))
    try:
        services.change_user(user, form.role.data, form.display_name.data or "")
    except ServiceError as exc:
        return _refused(exc, url_for("editor.users"))
    return _done(_("Account %(username)s saved.", username=user.username), target=url_for("editor.users"))


@bp.post("/users/<id:user_id>/<any(enable, disable):action>")
@admin_required
def user_active(user_id, action):
    """Enable or disable an account (admins only; never your own)."""
    user = db.session.get(User, user_id)
    if user is None or user.id == current_user.id:
        return _refused(ServiceError("You cannot change that account.", status=400), url_for("editor.users"))
    services.set_user_active(user, action == "enable")
    done = (_("Account %(username)s enabled.", username=user.username) if action == "enable"
            else _("Account %(username)s disabled.", username=user.username))
    return _done(done, target=url_for("editor.users"))
