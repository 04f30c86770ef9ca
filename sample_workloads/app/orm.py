"""The same users and projects through SQLAlchemy's ORM, with the same N+1 loop.

``project.owner`` is a lazy relationship: reading it for each project of a list
runs one SELECT per project.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    owner: Mapped[User] = relationship(lazy="select")


def make_session(url: str = "sqlite://") -> Session:
    """Return a session on a new database with the tables created."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    return Session(engine)


def seed(session: Session, users: int = 8) -> None:
    """Add ``users`` users, each owning one project."""
    for number in range(1, users + 1):
        owner = User(name=f"user {number}")
        session.add_all([owner, Project(name=f"project {number}", owner=owner)])
    session.commit()
    session.expire_all()


def project_owner_names(session: Session) -> list[tuple[str, str]]:
    """Return (project, owner) names; each ``project.owner`` is one more query."""
    projects = session.scalars(select(Project).order_by(Project.id)).all()
    return [(project.name, project.owner.name) for project in projects]
