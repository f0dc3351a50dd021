"""Markdown import and export: posts with front matter, as Jekyll and Hugo keep them.

Import (`import_file`): YAML front matter between `---` lines (read with yaml's safe loader), or Hugo's TOML
between `+++` lines, then the Markdown body. Every change goes through `tracker.services`, and each file is
imported in one transaction (`services.atomic`): a skipped file leaves nothing behind, neither a new story nor
part of an update. Everything that can be checked before writing (fields, dates, sections) is checked first.

Only regular files are read. A symbolic link (given as a path or found in a directory, even one pointing to
a directory) is skipped, and so are FIFOs, devices and sockets: a link could publish any file the importer
can read (`instance/secret_key`, `/etc/passwd`), a FIFO would hang the import. The file is opened without
following a link and without blocking, and the opened file is checked again, so swapping it in between
does not help. Front matter is limited to 65,536 characters and 20 levels of lists and tables in each
other, and YAML anchors and aliases (`&name`, `*name`) are refused: a few aliases can stand for billions
of values ("billion laughs").

- A story file: `title` (required), `slug` (else the file name without a Jekyll `YYYY-MM-DD-` prefix),
  `date`, `lang`/`language` (a new story's, when Tracker speaks it), `excerpt`/`summary`/`description`,
  `image` (an http(s) address, or a path in the site: uploaded as the lead image, see _Pictures),
  `categories` and `tags` (lists or comma-separated strings; both become the story's tags),
  `author`/`authors` (the entry's byline),
  `status` (live or ended). The body becomes the story's first entry, or, in the export format below,
  one entry per section. The slug identifies the story: importing again updates it.
- An entry file (`story_slug` given): one entry; `title` is its headline, `date` its time, and the file
  name its identity (`import:<file stem>`), so importing again corrects it.
- Images in a body given as paths (`![alt](/assets/photo.jpg)`) are uploaded and shown with their entry (alt
  text from the Markdown, else the headline or title), and taken out of its text; http(s) ones stay in the
  text. An image that cannot be found or taken is a warning on the file's line, not a reason to skip it.

Dates: a YAML/TOML date is midnight in `zone`; a date and time without a zone is read in `zone`; one with
a zone or offset is taken as is. Strings may be ISO 8601 (`2024-03-05`, `2024-03-05 14:30`,
`2024-03-05T14:30:00+02:00`, `...Z`), Jekyll's `2024-03-05 14:30:00 +0200`, `5 March 2024` (`5 Mar 2024`,
`March 5, 2024`, each optionally followed by `14:30`) or RFC 2822 (`Tue, 05 Mar 2024 14:30:00 +0000`).
Anything else is a bad date. No date means now.

Export (`export_story`): front matter (title, slug, date, summary, image, tags, status, language, and with images
their alt text, caption and credit as `media`), then each visible
entry, oldest first, as a section headed `## <time> · <headline>` (the time ISO 8601 in UTC with Z, to the
microsecond when it has one; ` · <headline>` only when there is a headline), a blank line and the Markdown
body. A body line that itself starts with `## <date>T` gets a backslash in front, removed again on import.
Pins, key-event marks, authors and deleted entries are not exported.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import yaml
from flask import current_app
from frontmatter.default_handlers import BaseHandler, YAMLHandler

from . import services, storage
from .i18n import DEFAULT_LANGUAGE, LANGUAGES
from .models import STATUSES, Story, utcnow
from .queries import entry_by_idempotency_key, story_by_slug, visible_entries
from .sanitize import clean_text

MARKDOWN_SUFFIXES = (".md", ".markdown")
MAX_FRONT_MATTER = 64 * 1024  # characters; real front matter is a few hundred
MAX_FRONT_MATTER_DEPTH = 20  # lists and tables in each other, the front matter itself counting as one
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
_JEKYLL_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}-")
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})"
_SECTION = re.compile(rf"^## ({_TIMESTAMP})(?: · (.*))?[ \t]*$", re.MULTILINE)
_ESCAPE_ON_EXPORT = re.compile(r"^(\\*## \d{4}-\d{2}-\d{2}T)", re.MULTILINE)
_UNESCAPE_ON_IMPORT = re.compile(r"^\\(\\*## \d{4}-\d{2}-\d{2}T)", re.MULTILINE)
_TEXT_FORMATS = ("%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y")
_TIME_FORMATS = ("", " %H:%M", " %H:%M:%S")
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when installed, as python-frontmatter's
_FILE_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a directory", stat.S_IFIFO: "a named pipe (FIFO)",
               stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}


class ImportSkipped(Exception):
    """The file was not imported (or not completely); `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _TOMLHandler(BaseHandler):
    """Hugo's `+++` TOML front matter, read with the standard library (python-frontmatter wants `toml`)."""

    FM_BOUNDARY = re.compile(r"^\+{3,}\s*$", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = "+++"

    def load(self, fm: str, **kwargs) -> dict:
        return tomllib.loads(fm)


class _YAMLHandler(YAMLHandler):
    """YAML front matter, without anchors and aliases and not nested too deeply (see the module's notes)."""

    def load(self, fm: str, **kwargs) -> dict:
        _check_yaml_events(fm)
        return yaml.load(fm, Loader=_SafeLoader)


def _check_yaml_events(fm: str) -> None:
    """Refuse anchors, aliases and deep nesting while reading events, before any value is built.

    A few `*alias`es can stand for billions of values, and libyaml builds values recursively, so
    thousands of nested `[` crash the process; reading events needs neither.
    """
    depth = 0
    for event in yaml.parse(fm, Loader=_SafeLoader):
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:  # `&name`, or a `*name` alias
            raise ImportSkipped("front matter uses YAML anchors or aliases (& and *), which are not allowed"
                                + _where(event.start_mark))
        depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
        if depth > MAX_FRONT_MATTER_DEPTH:
            raise ImportSkipped(f"front matter is nested more than {MAX_FRONT_MATTER_DEPTH} levels deep"
                                + _where(event.start_mark))


_HANDLERS = (_YAMLHandler(), _TOMLHandler())


@dataclass
class _Text:
    """One entry to be: its identity, time, headline and Markdown body."""

    key: str
    created_at: datetime
    headline: str
    body: str


# Reading files

def markdown_files(paths) -> list[Path]:
    """The files to import: each path given, with a directory standing for its *.md and *.markdown files.

    Links and other files that are not regular are listed too, so that the import reports them as skipped.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if _is_real_dir(path):
            files.extend(sorted(p for p in path.iterdir()
                                if p.suffix.lower() in MARKDOWN_SUFFIXES and not _is_real_dir(p)))
        else:
            files.append(path)
    return files


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _read_text(path: Path) -> str:
    """The text of a regular file; anything else, a symbolic link above all, is skipped (see the module's notes)."""
    try:
        return _read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportSkipped("not UTF-8 text") from None


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file (at most `limit` and one more); ImportSkipped for anything else."""
    try:
        # Checked before opening too: opening a device can act on it (a watchdog, a tape drive).
        _require_regular(os.lstat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ImportSkipped("no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link that replaced the file after the check
            _require_regular(stat.S_IFLNK)  # raises: a link is not a regular file
        raise ImportSkipped(exc.strerror or "cannot be read") from None
    with os.fdopen(fd, "rb") as file:
        _require_regular(os.fstat(file.fileno()).st_mode)  # what was opened, whatever the path names now
        return file.read() if limit is None else file.read(limit + 1)


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ImportSkipped(f"is {kind}; only regular files are imported")


def read_post(path: Path) -> tuple[dict, str]:
    """Front matter (a dict, empty when there is none) and the body of a Markdown file."""
    text = _read_text(path).strip()
    handler = next((h for h in _HANDLERS if h.detect(text)), None)
    if handler is None:
        return {}, text
    try:
        front, body = handler.split(text)
    except ValueError:
        raise ImportSkipped("front matter is not closed") from None
    if len(front) > MAX_FRONT_MATTER:
        raise ImportSkipped(f"front matter is too long: {len(front):,} characters, the limit is {MAX_FRONT_MATTER:,}")
    try:
        meta = handler.load(front)
    except yaml.MarkedYAMLError as exc:
        raise ImportSkipped(f"malformed front matter: {exc.problem or exc.context}{_where(exc.problem_mark)}") from None
    except (yaml.YAMLError, ValueError) as exc:  # TOMLDecodeError, and impossible dates such as 2024-02-30
        raise ImportSkipped(f"malformed front matter: {' '.join(str(exc).split())}") from None
    except RecursionError:  # tomllib recurses once per level of `[[[...`
        raise ImportSkipped("front matter is nested too deeply") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ImportSkipped("front matter is not a list of `name: value` fields")
    return meta, body.strip()


def _where(mark) -> str:
    """Where in the file a YAML mark points: its lines count from 0 on the line of the opening `---`."""
    return f" (line {mark.line + 1} of the file)" if mark else ""


def parse_date(value, zone: tzinfo = UTC) -> datetime:
    """An aware UTC datetime from a front matter date (see the module's notes); None or "" is now."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return utcnow()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        moment = _date_from_text(value.strip())
    else:
        moment = None
    if moment is None:
        raise ImportSkipped(f"bad date: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ImportSkipped(f"bad date: {value!r}") from None


def _date_from_text(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for day in _TEXT_FORMATS:
        for clock in _TIME_FORMATS:
            try:
                return datetime.strptime(text, day + clock)
            except ValueError:
                continue
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


# Front matter fields

def _text(meta: dict, *names: str) -> str:
    """The first of these fields that is present, as text ("" when absent or null)."""
    for name in names:
        value = meta.get(name)
        if value is None:
            continue
        if isinstance(value, list | dict):
            raise ImportSkipped(f"`{name}` must be text, not a {'list' if isinstance(value, list) else 'table'}")
        return str(value).strip()
    return ""


def _tags(meta: dict) -> list[str]:
    tags: list = []
    for name in ("categories", "tags"):
        value = meta.get(name)
        if isinstance(value, dict):
            raise ImportSkipped(f"`{name}` must be a list or comma-separated text")
        if value is not None:
            tags.extend(value if isinstance(value, list) else [value])
    return [str(tag) for tag in tags if tag is not None]


def _byline(meta: dict) -> str:
    value = meta.get("author", meta.get("authors"))
    if isinstance(value, dict):
        value = value.get("name", "")
    if isinstance(value, list):
        value = ", ".join(str(item.get("name", "") if isinstance(item, dict) else item) for item in value if item)
    return "" if value is None else str(value).strip()


def _language(meta: dict) -> str:
    """A new story's language: `lang` or `language` (fr, fr-FR...) when Tracker speaks it, else the default."""
    code = _text(meta, "lang", "language").lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def _image(meta: dict) -> tuple[str, str]:
    """The lead image: an http(s) address (as image_url), or a path (to upload); the other one empty."""
    image = _text(meta, "image")
    if re.match(r"^https?://[^/\s]", image, re.IGNORECASE):
        return image, ""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", image):
        raise ImportSkipped(f"image must be an http:// or https:// address or a path, not {image!r}")
    return "", image


def _key(*parts: str) -> str:
    """An idempotency key `import:...`, hashed when too long for the column."""
    key = clean_text("import:" + ":".join(parts))
    return key if len(key) <= 64 else "import:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _sections(body: str, slug: str) -> list[_Text] | None:
    """The entries of a body in the export format, or None when the body is not in that format."""
    matches = list(_SECTION.finditer(body))
    if not matches or matches[0].start() != 0:
        return None
    texts: list[_Text] = []
    seen: dict[str, int] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        created_at = parse_date(match.group(1))
        stamp = isoformat_exact(created_at)
        seen[stamp] = seen.get(stamp, 0) + 1
        text = body[match.end():following.start() if following else len(body)]
        texts.append(_Text(key=_key(slug, stamp if seen[stamp] == 1 else f"{stamp}#{seen[stamp]}"),
                           created_at=created_at, headline=(match.group(2) or "").strip(),
                           body=_UNESCAPE_ON_IMPORT.sub(r"\1", text).strip()))
    return texts


# Images of a post

SITE_MARKERS = ("_config.yml", "config.toml", "hugo.toml", "hugo.yaml")
# ![alt](address "title") whose address is a path, not an http(s) URL (those stay in the text).
_LOCAL_IMAGE = re.compile(r'!\[([^\]\n]*)\]\(\s*<?(?![A-Za-z][A-Za-z0-9+.-]*:)([^)\s>]+)>?(?:\s+"([^"\n]*)")?\s*\)')


class _Pictures:
    """A post's images given as paths: looked for beside the post, at the site root (the nearest folder
    above it with a Jekyll or Hugo config, or --site-root) and in its static/ folder, and uploaded like any
    image; one that cannot be found or taken is a warning, and the post is imported without it.

    The front matter's `media` (what export writes) may give an image's alt text, caption and credit by its
    path; else the alt text is the Markdown's and the caption its title (`![alt](path "caption")`).
    """

    def __init__(self, post: Path, site_root: Path | None, details=None):
        self.folder = post.parent
        self.root = site_root or next((folder for folder in (post.parent, *post.parent.parents)
                                       if any((folder / marker).is_file() for marker in SITE_MARKERS)), None)
        self.warnings: list[str] = []
        self.keys: list[str] = []  # of the files stored for this post
        self.details = details if isinstance(details, dict) else {}

    def forget(self) -> None:
        """Delete the files stored for a post whose import was rolled back."""
        for key in self.keys:
            storage.remove(key)

    def upload(self, address: str, alt: str, caption: str = "") -> int | None:
        """The media id of the image at this address, or None (and a warning)."""
        path = self._find(address)
        if path is None:
            self.warnings.append(f"image {address} was not found, imported without it")
            return None
        try:
            data = _read_bytes(path, current_app.config["MEDIA_MAX_BYTES"])
            given = self.details.get(address)
            given = {name: str(value) for name, value in given.items() if name in ("alt", "caption", "credit")
                     and isinstance(value, str | int | float)} if isinstance(given, dict) else {}
            media = services.add_media(data, **{"alt": alt, "caption": caption, **given})
            self.keys.append(media.key)
            return media.id
        except (ImportSkipped, services.ServiceError) as exc:
            self.warnings.append(f"image {address} was not imported ({getattr(exc, 'message', None) or exc}), "
                                 "imported without it")
            return None

    def _find(self, address: str) -> Path | None:
        relative = unquote(address.split("#")[0].split("?")[0]).lstrip("/")
        bases = ([] if address.startswith("/") else [self.folder]) + (
            [self.root, self.root / "static"] if self.root else [])
        for base in bases:
            candidate = base / relative
            try:  # never outside the folder it was looked for in, and never through a link
                inside = candidate.resolve(strict=True).is_relative_to(base.resolve(strict=True))
            except (OSError, RuntimeError):
                continue
            if inside and candidate.is_file() and not candidate.is_symlink():
                return candidate
        return None

    def take(self, body: str, alt: str) -> tuple[str, list[int]]:
        """The body without its path images, and the media ids of those that were uploaded, in order."""
        ids = []
        for match in _LOCAL_IMAGE.finditer(body):
            media_id = self.upload(match.group(2), clean_text(match.group(1)) or alt, match.group(3) or "")
            if media_id is not None:
                ids.append(media_id)
        return _LOCAL_IMAGE.sub("", body).strip(), ids

    def report(self, result: str) -> str:
        """The file's result, with its warnings."""
        return "; ".join([result, *(f"warning: {warning}" for warning in self.warnings)])


# Import

def import_file(path, story_slug: str | None = None, zone: tzinfo | str = UTC, site_root: Path | None = None) -> str:
    """Import one Markdown file; returns "created", "updated" or "unchanged" (followed by "; warning: ..."
    for each image left out), or raises ImportSkipped.

    Without `story_slug` the file is a story; with it, an entry of that story.
    """
    path = Path(path)
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    meta, body = read_post(path)
    pictures = _Pictures(path, site_root, meta.get("media"))
    try:
        with services.atomic():  # one transaction per file: any exception, ImportSkipped too, rolls it all back
            if story_slug is not None:
                return pictures.report(_import_entry(path, meta, body, story_slug, zone, pictures))
            return pictures.report(_import_story(path, meta, body, zone, pictures))
    except services.ServiceError as exc:
        pictures.forget()
        raise ImportSkipped(exc.message) from None
    except BaseException:
        pictures.forget()
        raise


def _import_story(path: Path, meta: dict, body: str, zone: tzinfo, pictures: _Pictures) -> str:
    title = _text(meta, "title")
    if not clean_text(title):
        raise ImportSkipped("no title in the front matter")
    # Always some slug, the same on every import of the file: it is the story's identity.
    slug = (clean_text(_text(meta, "slug")).lower() or services.slugify(_JEKYLL_DATE_PREFIX.sub("", path.stem))
            or services.slugify(title) or f"story-{hashlib.sha256(path.name.encode()).hexdigest()[:6]}")
    summary, (image_url, image_path), tags = _text(meta, "excerpt", "summary", "description"), _image(meta), _tags(meta)
    created_at, byline = parse_date(meta.get("date"), zone), _byline(meta)
    status = _text(meta, "status").lower()
    if status and status not in STATUSES:
        raise ImportSkipped(f"status must be 'live' or 'ended', not {status!r}")
    texts = _sections(body, slug)  # its dates are checked before anything is written
    if texts is None:
        texts = [_Text(_key(slug), created_at, "", body)] if body else []
    story = story_by_slug(slug)
    # Uploaded once: importing again keeps the lead image the story has.
    has_lead = story is not None and story.image_media_id is not None
    lead = pictures.upload(image_path, clean_text(title)) if image_path and not has_lead else None
    if story is None:
        story = services.create_story(title, summary, slug, image_url, tags=tags, created_at=created_at,
                                      image_media=lead, language=_language(meta))
        changed, result = True, CREATED
    else:
        changed, result = False, UPDATED
        if (clean_text(title), clean_text(summary), clean_text(image_url), services.normalize_tags(tags)) != (
                story.title, story.summary, story.image_url, story.tags):
            services.update_story(story, title, summary, image_url, tags=tags)
            changed = True
        if status == "live" and not story.is_live:
            services.set_status(story, "live")
            changed = True
        if lead is not None:
            services.change_story(story, image_media=lead)
            changed = True
    for text in texts:
        changed |= _put_entry(story, text, byline, pictures, clean_text(title))
    if status == "ended" and story.is_live:
        services.set_status(story, "ended")
        changed = True
    return result if changed else UNCHANGED


def _import_entry(path: Path, meta: dict, body: str, story_slug: str, zone: tzinfo, pictures: _Pictures) -> str:
    story = story_by_slug(story_slug)
    if story is None:
        raise ImportSkipped(f"no story '{story_slug}'")
    if not clean_text(body):
        raise ImportSkipped("no text below the front matter")
    text = _Text(_key(path.stem), parse_date(meta.get("date"), zone), _text(meta, "title"), body)
    existing = entry_by_idempotency_key(story, text.key)
    changed = _put_entry(story, text, _byline(meta), pictures, clean_text(text.headline) or story.title)
    return CREATED if existing is None else UPDATED if changed else UNCHANGED


def _put_entry(story: Story, text: _Text, byline: str, pictures: _Pictures, alt: str) -> bool:
    """Add the entry, or correct the one imported before; tell whether anything changed.

    An imported entry that an editor deleted stays deleted; its time is not changed. Its images are
    uploaded when it is added; importing again keeps the ones it has.
    """
    entry = entry_by_idempotency_key(story, text.key)
    if entry is None:
        body, media = pictures.take(text.body, alt)
        services.append_entry(story, body or alt, text.headline, idempotency_key=text.key,
                              created_at=text.created_at, byline=byline, media=media)
        return True
    if entry.deleted:
        return False
    rev = entry.rev
    media = None
    if entry.has_media:  # its images were taken out of its text when they were uploaded
        body = _LOCAL_IMAGE.sub("", text.body).strip()
    else:  # imported before images came along, or without them: they come now
        body, media = pictures.take(text.body, alt)
    services.change_entry(entry, body=body or entry.body, headline=text.headline, byline=byline,
                          media=media or None)
    return entry.rev != rev


# Export

def isoformat_exact(value: datetime) -> str:
    """ISO 8601 in UTC with Z: seconds, or microseconds when there are any."""
    value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds").replace("+00:00", "Z")


def export_story(story: Story, media_folder: Path | None = None) -> str:
    """The story as Markdown with YAML front matter and one section per visible entry (see the module's notes).

    With `media_folder` (a folder beside the Markdown file), its images are written there and named by
    relative paths, the lead image as `image:` and each update's images as lines below its text, with
    their alt text, caption and credit in the front matter's `media`, so that importing the file again
    brings them back whole.
    """
    exported: dict[str, dict] = {}

    def export_image(media) -> str:
        path = _export_image(media, media_folder)
        if path:
            exported[path] = {"alt": media.alt, "caption": media.caption, "credit": media.credit}
        return path

    image = export_image(story.image_media) if story.image_media and media_folder else story.image_url
    sections = []
    for entry in visible_entries(story):
        headline = " ".join(entry.headline.split())
        heading = f"## {isoformat_exact(entry.created_at)}" + (f" · {headline}" if headline else "")
        body = _ESCAPE_ON_EXPORT.sub(r"\\\1", entry.body)
        if media_folder is not None:
            body += "".join(f"\n\n![{_alt(media.alt)}]({export_image(media)})" for media in entry.media)
        sections.append(f"{heading}\n\n{body}\n")
    meta = {"title": story.title, "slug": story.slug, "date": isoformat_exact(story.created_at),
            "summary": story.summary, "image": image, "tags": story.tag_list, "status": story.status,
            "language": story.language,
            **({"media": exported} if exported else {})}
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000).strip()
    return f"---\n{front}\n---\n" + "".join(f"\n{section}" for section in sections)


def _alt(text: str) -> str:
    return re.sub(r"[\[\]\\\n]", " ", text).strip()


def _export_image(media, folder: Path) -> str:
    """Write an image's largest variant into `folder`; its path relative to the Markdown file."""
    largest = media.to_dict()["variants"][-1]
    name = largest["url"].rsplit("/", 1)[1]
    data = storage.read(media.key, name)
    if data is None:
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    file_name = f"{media.key}{Path(name).suffix}"
    (folder / file_name).write_bytes(data)
    return f"{folder.name}/{file_name}"
