"""Django ORM through tombstone, configured in code (no settings module).

Two sets of unmanaged models over the same tables (tsapp/models.py):
``Project``/``Task``/... with ``on_delete=DO_NOTHING`` (Django sends one
DELETE, the database — i.e. tombstone — cascades), and ``CProject``/
``CTask``/... with Django's default collector (``CASCADE``, ``SET_NULL``,
``RESTRICT`` emulated by Django with SELECTs, child DELETEs and UPDATEs).
Both must report the counts a hard delete reports and never show a
deleted row.
"""

import django
import pytest
from django.conf import settings

import tsenv
from tsenv import assert_live, assert_project_gone, assert_soft_deleted, live_count

if not settings.configured:
    _db = tsenv.url_parts(tsenv.APP_DSN)
    settings.configure(
        DATABASES={
            # psycopg server-side binding ($1 parameters, prepared statements)
            # instead of Django's default client-side binding
            "serverside": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": _db["NAME"],
                "USER": _db["USER"],
                "PASSWORD": _db["PASSWORD"],
                "HOST": _db["HOST"],
                "PORT": _db["PORT"],
                "CONN_MAX_AGE": 0,
                "OPTIONS": {
                    "sslmode": "disable",
                    "connect_timeout": tsenv.CONNECT_TIMEOUT,
                    "server_side_binding": True,
                    "prepare_threshold": 0,
                },
            },
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": _db["NAME"],
                "USER": _db["USER"],
                "PASSWORD": _db["PASSWORD"],
                "HOST": _db["HOST"],
                "PORT": _db["PORT"],
                "CONN_MAX_AGE": 0,
                "OPTIONS": {"sslmode": "disable", "connect_timeout": tsenv.CONNECT_TIMEOUT},
            }
        },
        INSTALLED_APPS=["tsapp"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()

from django.db import IntegrityError, ProgrammingError, connection, connections, transaction  # noqa: E402
from django.db.models import Count, RestrictedError  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tsapp.models import (  # noqa: E402
    Attachment,
    CCategory,
    Category,
    Comment,
    CProject,
    CTask,
    CUser,
    Invoice,
    Project,
    Task,
    User,
)


@pytest.fixture(autouse=True)
def _fresh_django_connection():
    yield
    connections.close_all()


def sent(ctx):
    return [q["sql"] for q in ctx.captured_queries]


# --- DO_NOTHING: the database cascades ---------------------------------------


def test_model_delete_db_cascade_then_select_related(app, admin, direct):
    cat = tsenv.seed_category(direct)
    gone = tsenv.seed_project(direct, category_id=cat)
    keep = tsenv.seed_project(direct, category_id=cat)
    p = Project.objects.get(pk=gone["project"])
    with CaptureQueriesContext(connection) as ctx:
        assert p.delete() == (1, {"tsapp.Project": 1})
    assert len(ctx.captured_queries) == 1, sent(ctx)
    assert_project_gone(app, direct, gone, admin=admin)

    assert not Project.objects.filter(pk=gone["project"]).exists()
    # select_related: INNER JOIN projects, LEFT OUTER JOIN categories
    tasks = list(Task.objects.select_related("project", "project__category").filter(project__category_id=cat))
    assert sorted(t.id for t in tasks) == keep["tasks"]
    assert {t.project.id for t in tasks} == {keep["project"]}
    assert {t.project.category.id for t in tasks} == {cat}
    comments = list(Comment.objects.select_related("task__project").filter(task__project__category_id=cat))
    assert sorted(c.id for c in comments) == keep["comments"]
    assert Comment.objects.filter(task_id__in=gone["tasks"]).count() == 0
    assert Attachment.objects.filter(task__project_id=gone["project"]).count() == 0
    assert Invoice.objects.filter(project_id=gone["project"]).count() == 0
    # reverse relations, prefetch and aggregates only count live rows
    c = Category.objects.prefetch_related("projects__tasks").get(pk=cat)
    assert [p.id for p in c.projects.all()] == [keep["project"]]
    assert sorted(t.id for t in c.projects.all()[0].tasks.all()) == keep["tasks"]
    counted = Category.objects.annotate(n=Count("projects")).get(pk=cat)
    assert counted.n == 1
    assert list(Project.objects.filter(category_id=cat).annotate(n=Count("tasks")).values_list("id", "n")) == [
        (keep["project"], len(keep["tasks"]))
    ]
    # deleting it again: nothing live to delete
    assert Project.objects.filter(pk=gone["project"]).delete() == (0, {})


def test_queryset_filter_delete_counts(app, direct, seed):
    t = seed["tasks"]
    assert Task.objects.filter(project_id=seed["project"], id__in=t[:3]).delete() == (3, {"tsapp.Task": 3})
    # two of these five are live
    assert Task.objects.filter(id__in=t[:5]).delete() == (2, {"tsapp.Task": 2})
    assert list(Task.objects.filter(project_id=seed["project"]).values_list("id", flat=True).order_by("id")) == t[5:]
    assert Comment.objects.filter(task_id__in=t[:5]).count() == 0
    assert list(Comment.objects.select_related("task").filter(task__project_id=seed["project"]).values_list("task_id", flat=True).distinct()) == t[5:]
    assert_soft_deleted(direct, "tasks", "id", t[:5], 5)
    assert_soft_deleted(direct, "comments", "task_id", t[:5], 15)
    assert_live(direct, "tasks", "id", t[5:], len(t) - 5)
    # UPDATE counts live rows only
    assert Task.objects.filter(id__in=t).update(done=True) == len(t) - 5


def test_atomic_rollback(direct, seed):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            assert Project.objects.filter(pk=seed["project"]).delete() == (1, {"tsapp.Project": 1})
            assert Task.objects.filter(project_id=seed["project"]).count() == 0
            raise RuntimeError("roll back")
    assert Task.objects.filter(project_id=seed["project"]).count() == len(seed["tasks"])
    assert_live(direct, "tasks", "id", seed["tasks"], len(seed["tasks"]))


def test_restrict_is_a_database_error(direct):
    cat = direct.execute("SELECT category_id FROM projects WHERE id = 3").fetchone()[0]
    with pytest.raises(IntegrityError) as e:
        Category.objects.filter(pk=cat).delete()
    assert e.value.__cause__.sqlstate == "23503"
    # the connection is usable afterwards (autocommit)
    assert Category.objects.filter(pk=cat).exists()
    assert Project.objects.get(pk=3).category_id == cat
    assert_live(direct, "categories", "id", [cat], 1)


def test_truncate_is_refused(app, direct):
    tsenv.grant_truncate_on_tasks(direct, app)
    before = Task.objects.count()
    with pytest.raises(ProgrammingError) as e:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE tasks")
    assert e.value.__cause__.sqlstate == "42501"
    assert Task.objects.count() == before


def test_set_null_by_the_database(direct):
    user = tsenv.seed_user(direct)
    s = tsenv.seed_project(direct, tasks=2, comments=0, attachments=0, invoices=0, assignee_id=user)
    assert User.objects.get(pk=user).delete() == (1, {"tsapp.User": 1})
    assert not User.objects.filter(pk=user).exists()
    tasks = list(Task.objects.select_related("assignee").filter(id__in=s["tasks"]))
    assert len(tasks) == 2 and all(t.assignee_id is None and t.assignee is None for t in tasks)
    assert_soft_deleted(direct, "users", "id", [user], 1)


def test_select_related_nullable_side_soft_deleted(direct):
    # A user soft-deleted with the reference kept: select_related's LEFT OUTER
    # JOIN treats it as absent; the task is still returned.
    user = tsenv.seed_user(direct)
    s = tsenv.seed_project(direct, tasks=2, comments=0, attachments=0, invoices=0, assignee_id=user)
    direct.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (user,))
    tasks = list(Task.objects.select_related("assignee").filter(id__in=s["tasks"]).order_by("id"))
    assert [t.id for t in tasks] == s["tasks"]
    with CaptureQueriesContext(connection) as ctx:
        assert all(t.assignee is None for t in tasks)
    assert ctx.captured_queries == []


# --- Django's collector: CASCADE / SET_NULL / RESTRICT emulation ------------


def test_collector_model_delete(app, admin, direct):
    s = tsenv.seed_project(direct, tasks=6, comments=3, attachments=4, invoices=2)
    p = CProject.objects.get(pk=s["project"])
    with CaptureQueriesContext(connection) as ctx:
        total, per_model = p.delete()
    # exactly what Django reports against a database with hard deletes
    assert per_model == {
        "tsapp.CProject": 1,
        "tsapp.CTask": 6,
        "tsapp.CComment": 18,
        "tsapp.CAttachment": 4,
        "tsapp.CInvoice": 2,
    }, sent(ctx)
    assert total == 31
    assert_project_gone(app, direct, s, admin=admin)
    assert not CTask.objects.filter(project_id=s["project"]).exists()
    assert list(CTask.objects.select_related("project").filter(id__in=s["tasks"])) == []


def test_collector_queryset_delete_and_repeat(direct, app):
    s = tsenv.seed_project(direct, tasks=4, comments=2, attachments=2, invoices=1)
    total, per_model = CTask.objects.filter(id__in=s["tasks"][:2]).delete()
    assert per_model == {"tsapp.CTask": 2, "tsapp.CComment": 4, "tsapp.CAttachment": 2}
    assert total == 8
    # the collector finds only live rows the second time round
    total, per_model = CTask.objects.filter(project_id=s["project"]).delete()
    assert per_model == {"tsapp.CTask": 2, "tsapp.CComment": 4}
    assert total == 6
    assert CTask.objects.filter(project_id=s["project"]).delete() == (0, {})
    assert_soft_deleted(direct, "tasks", "id", s["tasks"], 4)
    assert_soft_deleted(direct, "comments", "id", s["comments"], 8)
    assert_soft_deleted(direct, "attachments", "id", s["attachments"], 2)
    assert_live(direct, "projects", "id", [s["project"]], 1)
    assert CProject.objects.get(pk=s["project"]).tasks.count() == 0


def test_collector_set_null(direct):
    user = tsenv.seed_user(direct)
    s = tsenv.seed_project(direct, tasks=3, comments=0, attachments=0, invoices=0, assignee_id=user, owner_id=user)
    total, per_model = CUser.objects.get(pk=user).delete()
    assert (total, per_model) == (1, {"tsapp.CUser": 1})
    assert list(CTask.objects.filter(id__in=s["tasks"]).values_list("assignee_id", flat=True)) == [None] * 3
    assert CProject.objects.get(pk=s["project"]).owner_id is None
    assert_soft_deleted(direct, "users", "id", [user], 1)


def test_collector_restrict_sees_live_rows_only(direct):
    cat = tsenv.seed_category(direct)
    s = tsenv.seed_project(direct, tasks=1, comments=1, attachments=0, invoices=0, category_id=cat)
    with pytest.raises(RestrictedError):
        CCategory.objects.get(pk=cat).delete()
    CProject.objects.get(pk=s["project"]).delete()
    # the only project is deleted: as with hard deletes, the category may go
    assert CCategory.objects.get(pk=cat).delete() == (1, {"tsapp.CCategory": 1})
    assert not CCategory.objects.filter(pk=cat).exists()
    assert_soft_deleted(direct, "categories", "id", [cat], 1)
    assert_soft_deleted(direct, "projects", "id", [s["project"]], 1)


def test_orm_insert_then_delete(app, direct):
    # Rows created through Django itself (INSERT ... RETURNING through the proxy).
    cat = Category.objects.create(name=tsenv.uniq("dj"))
    p = CProject.objects.create(name=tsenv.uniq("dj"), category_id=cat.id)
    tasks = [CTask.objects.create(project=p, title=f"dj {i}") for i in range(3)]
    for t in tasks:
        t.comments.create(body="dj comment")
    total, per_model = p.delete()
    assert per_model == {"tsapp.CProject": 1, "tsapp.CTask": 3, "tsapp.CComment": 3}
    assert not CProject.objects.filter(pk=p.pk).exists()
    assert_soft_deleted(direct, "tasks", "id", [t.id for t in tasks], 3)
    assert live_count(app, "comments", "task_id", [t.id for t in tasks]) == 0


def test_filter_across_a_join_then_delete(direct):
    cat = tsenv.seed_category(direct)
    a = tsenv.seed_project(direct, tasks=3, comments=1, attachments=0, invoices=0, category_id=cat)
    b = tsenv.seed_project(direct, tasks=2, comments=1, attachments=0, invoices=0, category_id=cat)
    assert Project.objects.filter(pk=b["project"]).delete() == (1, {"tsapp.Project": 1})
    # DELETE ... WHERE id IN (SELECT ... INNER JOIN projects ...): live rows only
    with CaptureQueriesContext(connection) as ctx:
        assert Task.objects.filter(project__category_id=cat).delete() == (3, {"tsapp.Task": 3})
    assert_soft_deleted(direct, "tasks", "id", a["tasks"] + b["tasks"], 5)
    # the collector flavour over a join
    c = tsenv.seed_project(direct, tasks=2, comments=2, attachments=1, invoices=0, category_id=cat)
    with CaptureQueriesContext(connection) as ctx:
        result = CTask.objects.filter(project__category_id=cat).delete()
    assert result == (7, {"tsapp.CTask": 2, "tsapp.CComment": 4, "tsapp.CAttachment": 1}), sent(ctx)
    assert_soft_deleted(direct, "tasks", "id", c["tasks"], 2)


def test_bulk_create_update_conflicts_on_partial_unique_email():
    email = tsenv.uniq("dj") + "@example.com"
    first = User.objects.create(email=email, name="first")
    assert first.delete() == (1, {"tsapp.User": 1})
    # ON CONFLICT (email) DO UPDATE: the unique index on email is partial
    # (WHERE deleted_at IS NULL); the application does not name the predicate.
    User.objects.bulk_create(
        [User(email=email, name="second")], update_conflicts=True, unique_fields=["email"], update_fields=["name"]
    )
    User.objects.bulk_create(
        [User(email=email, name="third")], update_conflicts=True, unique_fields=["email"], update_fields=["name"]
    )
    assert list(User.objects.filter(email=email).values_list("name", flat=True)) == ["third"]


def test_save_of_an_instance_deleted_meanwhile_recreates_it(direct, seed):
    # Django's save() of a loaded instance: UPDATE ... WHERE id = pk; when that
    # matches 0 rows (the row was deleted meanwhile), Django INSERTs the row
    # with the same primary key. Against a database with hard deletes this
    # re-creates the row; the application must see the same through tombstone.
    t = Task.objects.get(pk=seed["tasks"][0])
    assert Task.objects.filter(pk=t.pk).delete() == (1, {"tsapp.Task": 1})
    t.title = "saved after delete"
    with CaptureQueriesContext(connection) as ctx:
        try:
            t.save()
        except IntegrityError as e:
            pytest.fail(f"save() after delete failed: {e!r}; statements sent: {sent(ctx)}")
    assert Task.objects.get(pk=t.pk).title == "saved after delete", sent(ctx)


def test_server_side_binding_and_prepared(app, direct):
    # Same operations over psycopg server-side binding with prepared statements.
    a = tsenv.seed_project(direct, tasks=3, comments=2, attachments=1, invoices=1)
    b = tsenv.seed_project(direct, tasks=3, comments=2, attachments=1, invoices=1)
    assert Project.objects.using("serverside").get(pk=a["project"]).delete() == (1, {"tsapp.Project": 1})
    assert_project_gone(app, direct, a)
    for tid in b["tasks"][:2]:
        assert Task.objects.using("serverside").filter(pk=tid).delete() == (1, {"tsapp.Task": 1})
    assert Task.objects.using("serverside").filter(pk__in=b["tasks"]).delete() == (1, {"tsapp.Task": 1})
    assert list(Comment.objects.using("serverside").select_related("task__project").filter(task__project_id__in=[a["project"], b["project"]])) == []
    total, per_model = CProject.objects.using("serverside").filter(pk=b["project"]).delete()
    assert per_model == {"tsapp.CProject": 1, "tsapp.CInvoice": 1}
    assert_soft_deleted(direct, "tasks", "id", b["tasks"], 3)
