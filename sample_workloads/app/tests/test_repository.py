"""Plain tests of the sample repository; they pass with or without qprof."""

import pytest
import repository


@pytest.fixture
def db():
    connection = repository.connect()
    repository.seed(connection)
    yield connection
    connection.close()


def test_list_projects_with_owners(db):
    projects = repository.list_projects_with_owners(db)
    assert len(projects) == 8
    assert projects[0] == {"id": 1, "name": "project 1", "owner": "user 2"}


def test_find_tasks_by_status(db):
    tasks = repository.find_tasks_by_status(db, "done")
    assert [title for _id, title in tasks][:2] == ["task 1.2", "task 2.2"]


def test_add_task(db):
    task_id = repository.add_task(db, 1, "write the docs")
    assert ("write the docs",) in db.execute(
        "SELECT title FROM tasks WHERE id = ?", (task_id,)
    )
