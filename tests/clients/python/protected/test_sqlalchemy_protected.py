"""SQLAlchemy 2 ORM (psycopg 3 dialect) through tombstone.

The models do not know about ``deleted_at``: the application is unmodified,
and tombstone alone makes DELETE soft and reads live-only. Relationships to
children use ``cascade="all, delete-orphan", passive_deletes=True`` — the
usual setup for a schema with ON DELETE CASCADE: children already loaded in
the session are deleted by the ORM one by one (each DELETE's rowcount is
checked by SQLAlchemy), children not loaded are left to the database, i.e.
to tombstone's cascade. ``Category.projects`` uses ``passive_deletes="all"``
so that the ORM leaves RESTRICT to the database.

SAWarning is an error here: SQLAlchemy reports a DELETE whose rowcount does
not match ("expected to delete 1 row(s); 0 were matched") as a warning.
"""

import uuid
import warnings
from datetime import datetime
from typing import List, Optional

import pytest
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError, SAWarning
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.schema import FetchedValue
from sqlalchemy.types import UserDefinedType

import tsenv
from tsenv import assert_live, assert_project_gone, assert_soft_deleted, live_count

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid())
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[Optional[str]] = mapped_column(Text)
    assigned: Mapped[List["Task"]] = relationship(back_populates="assignee", passive_deletes=True)


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    projects: Mapped[List["Project"]] = relationship(back_populates="category", passive_deletes="all")


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    category_id: Mapped[Optional[int]] = mapped_column(ForeignKey("categories.id"))
    owner_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    category: Mapped[Optional[Category]] = relationship(back_populates="projects")
    owner: Mapped[Optional[User]] = relationship()
    tasks: Mapped[List["Task"]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True, order_by="Task.id"
    )
    invoices: Mapped[List["Invoice"]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    assignee_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(server_default="false")
    project: Mapped[Project] = relationship(back_populates="tasks")
    assignee: Mapped[Optional[User]] = relationship(back_populates="assigned")
    comments: Mapped[List["Comment"]] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True, order_by="Comment.id"
    )
    attachments: Mapped[List["Attachment"]] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True
    )


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    author_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    task: Mapped[Task] = relationship(back_populates="comments")


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid())
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    filename: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    task: Mapped[Task] = relationship(back_populates="attachments")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = {"schema": "billing"}
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    project: Mapped[Project] = relationship(back_populates="invoices")


class VersionedBase(DeclarativeBase):
    pass


class XID(UserDefinedType):
    """PostgreSQL's xid (the type of xmin), compared as text."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "xid"

    def bind_processor(self, dialect):
        return lambda v: None if v is None else str(v)

    def result_processor(self, dialect, coltype):
        return lambda v: None if v is None else str(v)


class VersionedTask(VersionedBase):
    """tasks with PostgreSQL's xmin as the optimistic-locking version
    (SQLAlchemy's documented recipe): every UPDATE/DELETE carries
    ``AND tasks.xmin = <version>`` and expects exactly one row."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text)
    xmin: Mapped[str] = mapped_column(XID, system=True, server_default=FetchedValue())
    __mapper_args__ = {"version_id_col": xmin, "version_id_generator": False}


@pytest.fixture(scope="module")
def engine():
    eng = create_engine(
        tsenv.sqlalchemy_url(tsenv.APP_DSN),
        connect_args={"connect_timeout": tsenv.CONNECT_TIMEOUT},
        pool_size=2,
    )
    # Every statement the ORM sends, for failure messages.
    sent = []

    @event.listens_for(eng, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    eng.sent = sent
    yield eng
    eng.dispose()


def orm_project(session: Session, tasks=4, comments=2, attachments=2, invoices=2, category_id=None, assignee=None):
    """A project built with the ORM (INSERTs through the proxy)."""
    p = Project(name=tsenv.uniq("sa"), category_id=category_id)
    for i in range(tasks):
        t = Task(title=f"sa task {i}", assignee=assignee)
        t.comments = [Comment(body=f"sa comment {i}.{j}") for j in range(comments)]
        if i < attachments:
            t.attachments = [Attachment(filename=f"sa-{i}.pdf")]
        p.tasks.append(t)
    p.invoices = [Invoice(amount_cents=100 * (k + 1)) for k in range(invoices)]
    session.add(p)
    session.commit()
    return {
        "project": p.id,
        "tasks": sorted(t.id for t in p.tasks),
        "comments": sorted(c.id for t in p.tasks for c in t.comments),
        "attachments": [a.id for t in p.tasks for a in t.attachments],
        "invoices": sorted(i.id for i in p.invoices),
    }


def test_session_delete_parent_then_load_relationships(engine, app, admin, direct):
    cat = tsenv.seed_category(direct)
    with Session(engine) as s:
        seed = orm_project(s, category_id=cat)
        keep = orm_project(s, category_id=cat)
    with Session(engine) as s:
        p = s.get(Project, seed["project"])
        s.delete(p)  # children not loaded: the database (tombstone) cascades
        s.commit()
    assert_project_gone(app, direct, seed, admin=admin)

    with Session(engine) as s:
        assert s.get(Project, seed["project"]) is None
        assert s.scalars(select(Task).where(Task.project_id == seed["project"])).all() == []
        assert s.scalars(select(Comment).where(Comment.task_id.in_(seed["tasks"]))).all() == []
        c = s.get(Category, cat)
        # lazy load of the relationship
        assert [p.id for p in c.projects] == [keep["project"]]
    with Session(engine) as s:
        # eager loads: selectin, joined (LEFT OUTER JOIN), nested
        c = s.scalars(
            select(Category).where(Category.id == cat).options(
                selectinload(Category.projects).selectinload(Project.tasks).selectinload(Task.comments)
            )
        ).one()
        assert [p.id for p in c.projects] == [keep["project"]]
        assert sorted(t.id for t in c.projects[0].tasks) == keep["tasks"]
        assert sorted(cm.id for t in c.projects[0].tasks for cm in t.comments) == keep["comments"]
    with Session(engine) as s:
        c = s.scalars(
            select(Category).where(Category.id == cat).options(joinedload(Category.projects).joinedload(Project.tasks))
        ).unique().one()
        assert [p.id for p in c.projects] == [keep["project"]]
        # many-to-one from a child: the deleted project's tasks are not reachable
        tasks = s.scalars(
            select(Task).join(Task.project).where(Project.category_id == cat).options(joinedload(Task.project))
        ).all()
        assert sorted(t.id for t in tasks) == keep["tasks"]
    assert_live(direct, "tasks", "id", keep["tasks"], len(keep["tasks"]))


def test_session_delete_with_loaded_children(engine, app, direct):
    with Session(engine) as s:
        seed = orm_project(s, tasks=5, comments=3, attachments=3, invoices=2)
    start = len(engine.sent)
    with Session(engine) as s:
        p = s.scalars(
            select(Project).where(Project.id == seed["project"]).options(
                selectinload(Project.tasks).selectinload(Task.comments),
                selectinload(Project.tasks).selectinload(Task.attachments),
                selectinload(Project.invoices),
            )
        ).one()
        assert len(p.tasks) == 5
        # The ORM deletes every loaded object itself, children first, and
        # checks each DELETE's rowcount (StaleDataError / SAWarning on mismatch).
        s.delete(p)
        s.commit()
    sent = engine.sent[start:]
    assert any(q.startswith("DELETE FROM comments") for q in sent), sent
    assert any(q.startswith("DELETE FROM projects") for q in sent), sent
    assert_project_gone(app, direct, seed)


def test_delete_orphan_from_collection(engine, app, direct):
    with Session(engine) as s:
        seed = orm_project(s, tasks=3, comments=2, attachments=1, invoices=0)
    with Session(engine) as s:
        p = s.get(Project, seed["project"])
        removed = p.tasks.pop(0)
        removed_id = removed.id
        s.commit()
    with Session(engine) as s:
        p = s.get(Project, seed["project"])
        assert [t.id for t in p.tasks] == seed["tasks"][1:]
        assert s.get(Task, removed_id) is None
    assert_soft_deleted(direct, "tasks", "id", [removed_id], 1)
    assert_soft_deleted(direct, "comments", "task_id", [removed_id], 2)
    assert live_count(app, "comments", "task_id", seed["tasks"]) == 4


def test_bulk_delete_rowcounts(engine, app, direct):
    with Session(engine) as s:
        a = orm_project(s, tasks=4, comments=2, attachments=2, invoices=1)
        b = orm_project(s, tasks=3, comments=1, attachments=0, invoices=1)
    with Session(engine) as s:
        # plain bulk DELETE ... WHERE
        r = s.execute(delete(Task).where(Task.project_id == a["project"]), execution_options={"synchronize_session": False})
        assert r.rowcount == 4
        # already deleted rows are not hit again
        r = s.execute(delete(Task).where(Task.id.in_(a["tasks"] + b["tasks"][:1])), execution_options={"synchronize_session": False})
        assert r.rowcount == 1
        # synchronize_session="fetch" uses DELETE ... RETURNING on PostgreSQL
        loaded = s.get(Task, b["tasks"][1])
        r = s.execute(delete(Task).where(Task.id == b["tasks"][1]), execution_options={"synchronize_session": "fetch"})
        assert r.rowcount == 1
        # explicit RETURNING
        ids = s.scalars(delete(Project).where(Project.id == b["project"]).returning(Project.id)).all()
        assert ids == [b["project"]]
        # UPDATE counts live rows only
        r = s.execute(update(Task).where(Task.id.in_(a["tasks"] + b["tasks"])).values(done=True), execution_options={"synchronize_session": False})
        assert r.rowcount == 0
        s.commit()
        assert loaded not in s
    with Session(engine) as s:
        assert s.scalars(select(Task).where(Task.project_id.in_([a["project"], b["project"]]))).all() == []
        assert s.scalars(select(Comment).join(Task).where(Task.id.in_(a["tasks"] + b["tasks"]))).all() == []
        pa = s.get(Project, a["project"])
        assert pa.tasks == []  # the project itself is live; its tasks are gone
        assert s.get(Project, b["project"]) is None
    assert_soft_deleted(direct, "tasks", "id", a["tasks"], 4)
    assert_soft_deleted(direct, "tasks", "id", b["tasks"], 3)
    assert_soft_deleted(direct, "comments", "task_id", a["tasks"], 8)
    assert_soft_deleted(direct, "billing.invoices", "project_id", [b["project"]], 1)
    assert_live(direct, "projects", "id", [a["project"]], 1)


def test_update_of_a_row_deleted_meanwhile_is_stale(engine, direct):
    # As with a hard delete, an ORM flush that UPDATEs a row another session
    # deleted matches 0 rows -> StaleDataError. The same error the twin gives.
    with Session(engine) as s:
        seed = orm_project(s, tasks=2, comments=0, attachments=0, invoices=0)
    with Session(engine) as s1, Session(engine) as s2:
        t = s1.get(Task, seed["tasks"][0])
        s2.delete(s2.get(Project, seed["project"]))
        s2.commit()
        t.title = "renamed after delete"
        with pytest.raises(StaleDataError):
            s1.commit()
        s1.rollback()
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"], 2)


def test_restrict_through_the_orm(engine, direct):
    cat = direct.execute("SELECT category_id FROM projects WHERE id = 3").fetchone()[0]
    with Session(engine) as s:
        s.delete(s.get(Category, cat))
        with pytest.raises(IntegrityError) as e:
            s.commit()
        assert e.value.orig.sqlstate == "23503"
        s.rollback()
        # the session is usable and nothing changed
        assert s.get(Category, cat) is not None
        assert s.get(Project, 3).category_id == cat
    assert_live(direct, "categories", "id", [cat], 1)


def test_set_null_and_user_delete(engine, direct):
    with Session(engine) as s:
        u = User(email=tsenv.uniq("sa") + "@example.com", name="sa user")
        s.add(u)
        s.commit()
        seed = orm_project(s, tasks=2, comments=0, attachments=0, invoices=0, assignee=u)
        uid = u.id
    with Session(engine) as s:
        s.delete(s.get(User, uid))
        s.commit()
    with Session(engine) as s:
        assert s.get(User, uid) is None
        tasks = s.scalars(select(Task).where(Task.id.in_(seed["tasks"])).options(joinedload(Task.assignee))).all()
        assert len(tasks) == 2
        assert all(t.assignee_id is None and t.assignee is None for t in tasks)
    assert_soft_deleted(direct, "users", "id", [uid], 1)


def test_bulk_delete_with_join_criteria(engine, direct):
    cat = tsenv.seed_category(direct)
    a = tsenv.seed_project(direct, tasks=3, comments=1, attachments=0, invoices=0, category_id=cat)
    b = tsenv.seed_project(direct, tasks=2, comments=1, attachments=0, invoices=0, category_id=cat)
    with Session(engine) as s:
        s.delete(s.get(Project, b["project"]))
        s.commit()
        # DELETE FROM tasks USING projects WHERE ... : the deleted project must not match
        r = s.execute(
            delete(Task).where(Task.project_id == Project.id, Project.category_id == cat),
            execution_options={"synchronize_session": False},
        )
        assert r.rowcount == 3
        s.commit()
    assert_soft_deleted(direct, "tasks", "id", a["tasks"] + b["tasks"], 5)


def test_upsert_reusing_a_deleted_email(engine, direct):
    email = tsenv.uniq("sa") + "@example.com"
    with Session(engine) as s:
        u = User(email=email, name="first")
        s.add(u)
        s.commit()
        old = u.id
        s.delete(u)
        s.commit()
        stmt = pg_insert(User).values(email=email, name="second")
        stmt = stmt.on_conflict_do_update(index_elements=["email"], set_={"name": stmt.excluded.name})
        new = s.execute(stmt.returning(User.id)).scalar_one()
        s.commit()
        assert new != old
        assert s.scalars(select(User).where(User.email == email)).one().name == "second"
    assert direct.execute("SELECT count(*), count(deleted_at) FROM users WHERE email = %s", (email,)).fetchone() == (2, 1)


def test_merge_of_a_detached_object_deleted_meanwhile(engine, direct):
    # session.merge() of a detached object whose row is gone: SELECT finds
    # nothing, so the ORM INSERTs it with its primary key. With hard deletes
    # this re-creates the row; through tombstone it must too.
    with Session(engine) as s:
        seed = orm_project(s, tasks=1, comments=0, attachments=0, invoices=0)
    with Session(engine) as s:
        detached = s.get(Task, seed["tasks"][0])
        s.expunge(detached)
        s.execute(delete(Task).where(Task.id == detached.id), execution_options={"synchronize_session": False})
        s.commit()
    detached.title = "merged after delete"
    start = len(engine.sent)
    with Session(engine) as s:
        s.merge(detached)
        try:
            s.commit()
        except IntegrityError as e:
            pytest.fail(f"merge() after delete failed: {e.orig!r}; statements sent: {engine.sent[start:]}")
    with Session(engine) as s:
        assert s.get(Task, seed["tasks"][0]).title == "merged after delete"


def test_xmin_optimistic_locking(engine, direct):
    with Session(engine) as s:
        seed = orm_project(s, tasks=3, comments=1, attachments=0, invoices=0)
    with Session(engine) as s:
        t1 = s.get(VersionedTask, seed["tasks"][0])
        t1.title = "versioned update"
        s.commit()  # UPDATE ... WHERE id = ? AND xmin = ? RETURNING xmin
        s.delete(s.get(VersionedTask, seed["tasks"][1]))
        s.commit()  # DELETE ... WHERE id = ? AND xmin = ?: must report 1 row
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"][1:2], 1)
    assert_soft_deleted(direct, "comments", "task_id", seed["tasks"][1:2], 1)
    # a concurrent change makes the version stale, as without tombstone
    with Session(engine) as s1, Session(engine) as s2:
        a = s1.get(VersionedTask, seed["tasks"][2])
        b = s2.get(VersionedTask, seed["tasks"][2])
        b.title = "changed by s2"
        s2.commit()
        s1.delete(a)
        with pytest.raises(StaleDataError):
            s1.commit()
        s1.rollback()
    assert_live(direct, "tasks", "id", seed["tasks"][2:], 1)
