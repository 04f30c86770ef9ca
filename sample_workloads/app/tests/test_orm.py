"""Plain tests of the SQLAlchemy variant of the sample app."""

import pytest

pytest.importorskip("sqlalchemy")

import orm  # noqa: E402


def test_project_owner_names():
    session = orm.make_session()
    orm.seed(session)
    names = orm.project_owner_names(session)
    assert names[0] == ("project 1", "user 1") and len(names) == 8
