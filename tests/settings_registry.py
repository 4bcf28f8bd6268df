"""Every component's settings class, for the tests that hold them to the docs and compose."""

from __future__ import annotations

from emr_jobs.core.settings import Settings


def settings_classes() -> list[type[Settings]]:
    """The subclasses of the core's ``Settings``, once every component's module is imported."""
    import emr_jobs.core.kafka  # noqa: F401 - each import registers its classes
    import emr_jobs.settings  # noqa: F401
    import producer.settings  # noqa: F401
    import scripts.alerts.settings  # noqa: F401
    import scripts.dashboard.settings  # noqa: F401
    import scripts.topics  # noqa: F401

    found: list[type[Settings]] = []
    todo: list[type[Settings]] = [Settings]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found
