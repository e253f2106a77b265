"""Users grid (admins only): logins and roles; passwords are set here and stored hashed (User.password)."""
from __future__ import annotations

from wtforms import PasswordField
from wtforms.validators import DataRequired, Email, Length, Optional, StopValidation

from models import USER_ROLES, User, normal_email
from views.base import SecureModelView, fmt_time


def new_user_needs_password(form, field) -> None:
    """A password is required when creating a user; on edit, an empty one keeps the current password."""
    if getattr(form, "_obj", None) is None and not field.data:
        raise StopValidation("A new user needs a password.")


class UserView(SecureModelView):
    admin_only = True
    column_list = ("id", "email", "role", "active", "created_at")
    column_labels = {"id": "ID", "created_at": "Created"}
    column_searchable_list = ("email",)
    column_filters = ("role", "active")
    column_formatters = {"created_at": fmt_time("created_at")}
    column_details_exclude_list = ("password_hash", "session_version")
    form_columns = ("email", "password", "role", "active")
    form_extra_fields = {"password": PasswordField(
        "Password", validators=[new_user_needs_password, Optional(),
                                Length(min=8, max=200, message="A password has at least 8 characters (at most 200).")],
        description="At least 8 characters; leave empty to keep the current one.")}
    form_choices = {"role": [(r, r) for r in USER_ROLES]}
    form_args = {"email": {"validators": [DataRequired(), Email(), Length(max=255)], "filters": [normal_email]}}
    empty_message = "No users"

    def __init__(self) -> None:
        super().__init__(User, name="Users", endpoint="user", category="Settings")
