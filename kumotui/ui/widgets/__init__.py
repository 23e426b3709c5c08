"""Reusable widgets of the kumotui app (each with its own ``DEFAULT_CSS``)."""

from kumotui.ui.widgets.host_header import HostHeader
from kumotui.ui.widgets.param_details import Explanation, ParamDetails
from kumotui.ui.widgets.param_table import ParamTable

__all__ = ["Explanation", "HostHeader", "ParamDetails", "ParamTable"]
