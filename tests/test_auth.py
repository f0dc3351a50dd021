"""Login, logout, server-side sessions, login throttling, redirects and session cookie flags."""
import logging
from datetime import timedelta

import pytest
from helpers import PASSWORD, csrf_from, login, make_user, post_entry
from sqlalchemy import func, select, update

from tracker import create_app, services
from tracker.extensions import db
from tracker.models import User, UserSession, utcnow


def test_login_sets_a_protected_session_cookie(client, editor):
    response = login(client, editor)
    assert response.status_code == 302 and response.headers["Location"] == "/editor/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_over_https(client, editor):
    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    response = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                           data={"username": editor, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert "Secure" in response.headers["Set-Cookie"]


def test_session_cookie_is_secure_behind_a_trusted_tls_proxy(database_url, caplog):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": database_url, "TRUSTED_PROXIES": 1})
    with app.app_context():
        db.create_all()
        services.create_user("alice", PASSWORD)
    client = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "Referer": "https://localhost/login"}
    page = client.get("/login", headers=proxied).get_data(as_text=True)
    response = client.post("/login", headers=proxied,
                           data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]
    assert proxy_warnings(caplog) == []


@pytest.mark.parametrize("username, password", [("alice", "wrong password"), ("nobody", PASSWORD)])
def test_failed_login_gives_one_generic_message(client, editor, username, password):
    response = login(client, username, password)
    assert response.status_code == 401
    assert "Unknown username or wrong password." in response.get_data(as_text=True)
    assert client.get("/editor/").status_code == 302


def test_login_follows_only_local_next(client, editor):
    page = client.get("/login").get_data(as_text=True)
    data = {"username": editor, "password": PASSWORD, "csrf_token": csrf_from(page)}
    assert client.post("/login?next=/editor/stories/new", data=data).headers["Location"] == "/editor/stories/new"
    assert client.post("/login?next=//evil.example/", data=data).headers["Location"] == "/editor/"
    assert client.post("/login?next=https://evil.example/", data=data).headers["Location"] == "/editor/"


def test_login_without_csrf_token_is_refused(client, editor):
    assert client.post("/login", data={"username": editor, "password": PASSWORD}).status_code == 400


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "cross-site"}],
                         ids=["no Sec-Fetch-Site", "same-origin", "cross-site"])
def test_get_logout_only_shows_a_post_form(editor_client, headers):
    """An image or link to /logout, even in an update on this site, logs nobody out; the page's button does."""
    response = editor_client.get("/logout", headers=headers)
    main = response.get_data(as_text=True).partition('<main id="main"')[2]
    assert response.status_code == 200 and '<form class="form form--narrow" method="post" action="/logout">' in main
    assert editor_client.get("/editor/").status_code == 200
    assert editor_client.post("/logout", data={"csrf_token": csrf_from(main)}).headers["Location"] == "/"
    assert editor_client.get("/editor/").status_code == 302


def test_logout_kills_a_copied_cookie_but_not_the_other_browsers(app, editor_client, editor):
    copied = app.test_client()
    copied.set_cookie("session", editor_client.get_cookie("session").value)
    other_browser = app.test_client()
    assert login(other_browser, editor).status_code == 302
    assert copied.get("/editor/").status_code == 200
    token = csrf_from(editor_client.get("/editor/").get_data(as_text=True))
    assert editor_client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert editor_client.get("/editor/").status_code == 302
    assert copied.get("/editor/").status_code == 302
    assert other_browser.get("/editor/").status_code == 200


def test_logging_in_again_ends_this_browsers_previous_session(app, editor_client, editor):
    copied = app.test_client()
    copied.set_cookie("session", editor_client.get_cookie("session").value)
    assert login(editor_client, editor).status_code == 302
    assert copied.get("/editor/").status_code == 302 and editor_client.get("/editor/").status_code == 200


def test_expired_sessions_load_nobody_and_go_at_the_next_login(app, editor_client, editor):
    with app.app_context():
        db.session.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert editor_client.get("/editor/").status_code == 302
    assert login(app.test_client(), editor).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UserSession)) == 1  # only the new login's


def test_failed_logins_are_throttled_per_account_and_address(app, client, editor):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    for name in ("alice", " Alice", "ALICE "):  # one account, however its name is typed
        assert login(client, name, "wrong password").status_code == 401
    blocked = login(client, editor)  # even the right password waits now
    assert blocked.status_code == 429 and "Too many attempts" in blocked.get_data(as_text=True)
    assert "Retry-After" in blocked.headers
    other = login(app.test_client(), editor, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 302


def test_failures_against_one_account_do_not_lock_out_another(app, client, editor):
    """Editors behind one proxy share its address: ten wrong passwords for one account leave the others open."""
    make_user(app, "bob")
    for _ in range(10):  # LOGIN_RATE_LIMIT's default
        assert login(client, editor, "wrong password").status_code == 401
    assert login(client, editor).status_code == 429
    assert login(client, "bob").status_code == 302


def test_one_address_cannot_try_account_names_without_end(app, client, editor):
    app.config["LOGIN_ADDRESS_RATE_LIMIT"] = "5 per minute"
    for number in range(5):
        assert login(client, f"guess{number}", "wrong password").status_code == 401
    assert login(client, editor).status_code == 429
    assert login(app.test_client(), editor, environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code == 302


def test_successful_logins_do_not_count_toward_the_limit(app, editor):
    app.config.update(LOGIN_RATE_LIMIT="2 per minute", LOGIN_ADDRESS_RATE_LIMIT="2 per minute")
    for _ in range(4):
        client = app.test_client()
        assert login(client, editor).status_code == 302


def proxy_warnings(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "TRUSTED_PROXIES is unset" in record.getMessage()]


def test_a_proxy_without_trusted_proxies_is_warned_about_once(client, caplog):
    caplog.set_level(logging.WARNING)
    client.get("/login")
    assert proxy_warnings(caplog) == []
    for _ in range(3):
        client.get("/login", headers={"X-Forwarded-For": "203.0.113.7"})
    [warning] = proxy_warnings(caplog)
    assert warning.levelno == logging.WARNING and "set TRUSTED_PROXIES=1 behind nginx" in warning.getMessage()


def test_disabling_an_account_signs_its_sessions_out_for_good(app, editor_client, editor):
    """Session cookies are signed, not stored: re-enabling must not bring an old one back."""
    old_session = editor_client.get_cookie("session").value
    with app.app_context():
        account = db.session.scalar(select(User).where(User.username == editor))
        services.set_user_active(account, False)
        services.set_user_active(account, True)
    assert editor_client.get("/editor/").status_code == 302  # back to the login page
    fresh = app.test_client()
    fresh.set_cookie("session", old_session)
    assert fresh.get("/editor/").status_code == 302
    assert login(app.test_client(), editor).status_code == 302  # the account itself works again


def test_password_change_from_the_cli_signs_out_everywhere(app, editor_client, editor):
    other_browser = app.test_client()
    assert login(other_browser, editor).status_code == 302
    result = app.test_cli_runner().invoke(args=["user", "password", editor, "--password-stdin"],
                                          input="a new long passphrase\n")
    assert result.exit_code == 0 and "signed out" in result.output
    assert editor_client.get("/editor/").status_code == 302 and other_browser.get("/editor/").status_code == 302
    assert login(app.test_client(), editor).status_code == 401
    assert login(app.test_client(), editor, "a new long passphrase").status_code == 302


@pytest.mark.parametrize("user_id", ["1", "1-x", "x-0", "", "1-0-0", "99-0", "1-0", "1-0-" + "A" * 43])
def test_session_ids_of_another_form_or_account_are_nobody(app, editor, user_id):
    """Among them the form before server-side sessions ("1-0"), and a well-formed id without a record."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user_id
    assert client.get("/editor/").status_code == 302


def profile_post(client, **fields):
    token = csrf_from(client.get("/editor/profile").get_data(as_text=True))
    data = {"display_name": "", "current_password": "", "new_password": "", **fields, "csrf_token": token}
    return client.post("/editor/profile", data=data)


def test_profile_sets_the_display_name_that_bylines_show(app, editor_client, story):
    saved = profile_post(editor_client, display_name="  Alice Moreau ")
    assert saved.status_code == 302 and saved.headers["Location"] == "/editor/profile"
    with app.app_context():
        assert db.session.scalar(select(User.display_name).where(User.username == "alice")) == "Alice Moreau"
    post_entry(editor_client, story, "Bridge closed.")
    assert "By Alice Moreau" in editor_client.get(f"/stories/{story}").get_data(as_text=True)
    assert "Log out Alice Moreau" in editor_client.get("/editor/").get_data(as_text=True)


def test_profile_password_change_needs_the_current_one_and_signs_out_only_the_other_sessions(app, editor_client,
                                                                                             editor):
    other = app.test_client()
    assert login(other, editor).status_code == 302
    wrong = profile_post(editor_client, current_password="not it", new_password="a new passphrase")
    assert wrong.status_code == 403 and "current password is not right" in wrong.get_data(as_text=True)
    assert login(app.test_client(), editor).status_code == 302  # the old password still works
    changed = profile_post(editor_client, current_password=PASSWORD, new_password="a new passphrase")
    assert changed.status_code == 302
    assert editor_client.get("/editor/").status_code == 200  # this browser stays signed in
    assert other.get("/editor/").status_code == 302  # the other one is out
    assert login(app.test_client(), editor, "a new passphrase").status_code == 302
    short = profile_post(editor_client, current_password="a new passphrase", new_password="short")
    assert short.status_code == 400 and "at least 8" in short.get_data(as_text=True)
