"""Users grid (admins only): logins and roles; passwords are set here and stored hashed."""
from __future__ import annotations

from wtforms import PasswordField
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from auth import hash_password
from models import USER_ROLES, User
from views.base import SecureModelView, fmt_time


class UserView(SecureModelView):
    admin_only = True
    column_list = ("id", "email", "role", "active", "created_at")
    column_labels = {"id": "ID", "created_at": "Created"}
    column_searchable_list = ("email",)
    column_filters = ("role", "active")
    column_formatters = {"created_at": fmt_time("created_at")}
    column_details_exclude_list = ("password_hash",)
    form_columns = ("email", "role", "active")
    form_extra_fields = {"password": PasswordField("Password", validators=[Optional(), Length(min=8, max=200)],
                                                   description="At least 8 characters; leave empty to keep.")}
    form_choices = {"role": [(r, r) for r in USER_ROLES]}
    form_args = {"email": {"validators": [DataRequired(), Email(), Length(max=255)]}}
    empty_message = "No users"

    def __init__(self) -> None:
        super().__init__(User, name="Users", endpoint="user", category="Settings")

    def on_model_change(self, form, model: User, is_created: bool) -> None:
        model.email = model.email.strip().lower()
        if form.password.data:
            model.password_hash = hash_password(form.password.data)
        elif is_created:
            raise ValidationError("A new user needs a password.")
