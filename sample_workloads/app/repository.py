"""A small repository layer over stdlib sqlite3: users, projects and their tasks.

It has two performance bugs on purpose, for qprof's capture to find:
``list_projects_with_owners`` runs one query per project (an N+1 loop), and
``find_tasks_by_status`` filters on ``tasks.status``, which no index serves.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES users(id)
);
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    title TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX tasks_project_id ON tasks(project_id);
"""
STATUSES = ("todo", "doing", "done")


def connect(path: str = ":memory:") -> sqlite3.Connection:
    """Open the database at ``path`` and create the schema when it is new."""
    connection = sqlite3.connect(path)
    if not connection.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'users'"
    ).fetchone():
        connection.executescript(SCHEMA)
    return connection


def seed(
    connection: sqlite3.Connection, projects: int = 8, tasks_per_project: int = 5
) -> None:
    """Fill the database with a few users, ``projects`` projects and their tasks."""
    users = [(f"user {i}", f"user{i}@example.com") for i in range(1, 5)]
    connection.executemany("INSERT INTO users (name, email) VALUES (?, ?)", users)
    for number in range(1, projects + 1):
        cursor = connection.execute(
            "INSERT INTO projects (name, owner_id) VALUES (?, ?)",
            (f"project {number}", number % len(users) + 1),
        )
        tasks = [
            (cursor.lastrowid, f"task {number}.{i}", STATUSES[i % len(STATUSES)])
            for i in range(tasks_per_project)
        ]
        connection.executemany(
            "INSERT INTO tasks (project_id, title, status) VALUES (?, ?, ?)", tasks
        )
    connection.commit()


def list_projects_with_owners(
    connection: sqlite3.Connection,
) -> list[dict[str, object]]:
    """Return every project with its owner's name (one query per project: an N+1 loop)."""
    projects = connection.execute("SELECT id, name, owner_id FROM projects ORDER BY id")
    result = []
    for project_id, name, owner_id in projects.fetchall():
        owner = connection.execute(
            "SELECT name FROM users WHERE id = ?", (owner_id,)
        ).fetchone()
        result.append({"id": project_id, "name": name, "owner": owner[0]})
    return result


def find_tasks_by_status(
    connection: sqlite3.Connection, status: str
) -> list[tuple[int, str]]:
    """Return the tasks in ``status`` (a filter no index serves: a full scan)."""
    return connection.execute(
        "SELECT id, title FROM tasks WHERE status = ? ORDER BY id", (status,)
    ).fetchall()


def add_task(connection: sqlite3.Connection, project_id: int, title: str) -> int:
    """Add a task to a project and return its id."""
    cursor = connection.execute(
        "INSERT INTO tasks (project_id, title, status) VALUES (?, ?, 'todo')",
        (project_id, title),
    )
    connection.commit()
    return int(cursor.lastrowid or 0)
