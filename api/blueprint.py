"""The API's blueprint: every route module of api/ adds its routes to it; `init_api` registers it."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
