"""Staff login: users, roles, sessions that a logout or an account change ends, and the login page."""
from __future__ import annotations

import secrets
from functools import cache

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from extensions import db, login_manager
from models import USER_ROLES, User, normal_email
from web.redirects import safe_next
from web.security import clear_login_attempts, count_login_attempt

bp = Blueprint("auth", __name__)

EDITOR_ROLES = ("admin", "staff")


def create_user(email: str, password: str, role: str) -> User:
    """Create or update a user (idempotent by email); raises ValueError on bad input."""
    email = normal_email(email)
    if "@" not in email or len(email) > 255:
        raise ValueError(f"not an email address: {email!r}")
    if role not in USER_ROLES:
        raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    if user is None:
        user = User(email=email)
        db.session.add(user)
    user.password = password
    user.role = role
    user.active = True
    db.session.commit()
    return user


def can_edit(user: object) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "role", None) in EDITOR_ROLES)


def is_admin(user: object) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "role", None) == "admin")


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a session id `<id>:<session version>`; None (logged out) when the version has moved on."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


@cache
def _dummy_hash() -> str:
    """A hash made as real ones are, of a password nobody knows: checked when there is no user to check."""
    return generate_password_hash(secrets.token_urlsafe(32))


def password_matches(user: User | None, password: str) -> bool:
    """Whether `password` logs `user` in; an unknown or inactive user costs the same hash check as a real one."""
    usable = user is not None and user.active
    return check_password_hash(user.password_hash if usable else _dummy_hash(), password) and usable


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = normal_email(form.email.data)
        wait = count_login_attempt(email)
        if wait:
            flash(f"Too many failed logins; try again in {max(1, wait // 60)} minutes.", "error")
            return render_template("auth/login.html", form=form), 429
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if password_matches(user, form.password.data):
            clear_login_attempts(email)
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        flash("Wrong email or password.", "error")
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """End this session and every other session of the user (a copied cookie included)."""
    if current_user.is_authenticated:
        current_user.end_sessions()
        db.session.commit()
    logout_user()
    return redirect(url_for("auth.login"))
