"""WTForms for the editor and login pages (CSRF comes with FlaskForm)."""
from datetime import datetime, timedelta, timezone

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from .i18n import DEFAULT_LANGUAGE, LANGUAGES
from .models import (
    MAX_BODY,
    MAX_DISPLAY_NAME,
    MAX_HEADLINE,
    MAX_IMAGE_URL,
    MAX_NOTE,
    MAX_REV,
    MAX_SLUG,
    MAX_SUMMARY,
    MAX_TITLE,
    ORDERS,
    ROLES,
    STATUSES,
)


def _unix_newlines(value):
    """Browsers send textarea line breaks as CRLF; count and store them as one character."""
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class StoryForm(FlaskForm):
    """A story's editable fields; the slug is only set at creation."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=MAX_TITLE)])
    slug = StringField(_l("Slug"), validators=[Optional(), Length(max=MAX_SLUG)],
                       description=_l("Part of the address; leave empty to derive it from the title."))
    summary = TextAreaField(_l("Summary"), validators=[Optional(), Length(max=MAX_SUMMARY)])
    image_url = StringField(_l("Lead image URL"), validators=[Optional(), Length(max=MAX_IMAGE_URL)])
    status = SelectField(_l("Status"), default="live",
                         choices=[SelectChoice(status, label)
                                  for status, label in zip(STATUSES, (_l("Live"), _l("Ended")), strict=True)])
    order = SelectField(_l("Reading order"), default=ORDERS[0],
                        choices=[SelectChoice("newest", _l("Newest update first")),
                                 SelectChoice("oldest", _l("Oldest update first (a timeline, a Q&A)"))],
                        description=_l("What readers see first, unless they choose for themselves."))
    language = SelectField(_l("Language"), default=DEFAULT_LANGUAGE,
                           choices=[SelectChoice(code, name) for code, (name, _) in LANGUAGES.items()],
                           description=_l("Of the story's pages: their buttons and labels, dates and direction."))


_TOO_LONG = _l("The update is too long: the limit is %(limit)s characters. Nothing was cut; shorten it and send again.",
                limit=format(MAX_BODY, ","))


class _PublishTime:
    """A time to publish at, typed in the browser's local time; the page's script sends the browser's
    UTC offset in tz_offset (without it, the time is taken as UTC)."""

    publish_at = DateTimeLocalField(_l("Publish at"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    # Minutes, as getTimezoneOffset() gives them; real zones lie within 14 hours of UTC.
    tz_offset = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(-18 * 60, 18 * 60)])

    def publish_time(self) -> datetime | None:
        """The time asked for, as an aware datetime (None when left empty)."""
        if self.publish_at.data is None:
            return None
        return self.publish_at.data.replace(tzinfo=timezone(timedelta(minutes=-(self.tz_offset.data or 0))))


class EntryForm(_PublishTime, FlaskForm):
    """A new update; the idempotency key makes a double submit publish once. The button pressed
    (`intent`: publish, draft, submit or schedule) says what becomes of it."""

    headline = StringField(_l("Headline (optional)"), validators=[Optional(), Length(max=MAX_HEADLINE)])
    body = TextAreaField(_l("Update"), filters=[_unix_newlines],
                         validators=[DataRequired(message=_l("Write the update before publishing it.")),
                                     Length(max=MAX_BODY, message=_TOO_LONG)],
                         description=_l("Markdown: **bold**, _italic_, [links](https://example.com), > quotes, "
                                        "- lists."))
    key = BooleanField(_l("Key event"))
    pinned = BooleanField(_l("Pin to top"))
    idempotency_key = HiddenField()


class DeskForm(_PublishTime, FlaskForm):
    """A step on the desk: publish, submit, send back (with a note) or schedule an unpublished entry."""

    note = TextAreaField(_l("What needs changing"), validators=[Optional(), Length(max=MAX_NOTE)])
    base_rev = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(-MAX_REV, MAX_REV)])


class EditEntryForm(FlaskForm):
    """A correction of an entry's text, and the revision it started from (see services.Changed)."""

    headline = StringField(_l("Headline (optional)"), validators=[Optional(), Length(max=MAX_HEADLINE)])
    body = TextAreaField(_l("Update"), filters=[_unix_newlines],
                         validators=[DataRequired(), Length(max=MAX_BODY, message=_TOO_LONG)])
    # Negative for an unpublished entry (see models.Entry.rev).
    base_rev = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(
        -MAX_REV, MAX_REV, message=_l("This form is out of date; reload the page and correct again."))])


class ActionForm(FlaskForm):
    """An empty form for buttons that change state (delete, pin, end): it carries the CSRF token."""


def _role_field():
    return SelectField(_l("Role"), default=ROLES[0], choices=[SelectChoice(role, label) for role, label in zip(
        ROLES, (_l("Editor"), _l("Contributor"), _l("Admin")), strict=True)],
                       description=_l("Contributors write but cannot publish; editors publish and correct; "
                                   "admins also manage accounts."))


def _display_name_field():
    return StringField(_l("Display name"), validators=[Optional(), Length(max=MAX_DISPLAY_NAME)],
                       description=_l("Shown in bylines; leave empty to show the username."))


class UserForm(FlaskForm):
    """An admin creating an account."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(min=2, max=64)])
    display_name = _display_name_field()
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8, max=1024)])
    role = _role_field()


class AccountForm(FlaskForm):
    """An admin changing an account's role and display name."""

    display_name = _display_name_field()
    role = _role_field()


class ProfileForm(FlaskForm):
    """A person's own display name and password."""

    display_name = _display_name_field()
    current_password = PasswordField(_l("Current password"), validators=[Optional(), Length(max=1024)],
                                     description=_l("Needed only to change the password."))
    new_password = PasswordField(_l("New password"), validators=[
        Optional(), Length(min=8, max=1024, message=_l("A new password needs at least 8 characters (at most 1,024)."))],
                                 description=_l("At least 8 characters; leave empty to keep the current one. "
                                             "Your other sessions are signed out."))
