"""Recurring jobs (SPEC section 12): `SCHEDULES`, fired by the cron tick."""

from shared.schedules.config import ScheduleInfo, list_schedules
from shared.schedules.firing import FiredSlot, fire_due_schedules

__all__ = ["FiredSlot", "ScheduleInfo", "fire_due_schedules", "list_schedules"]
