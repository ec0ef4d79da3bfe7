"""Unmanaged Django models over the scenario tables, in two flavours.

1. ``Project``, ``Task``, ... — foreign keys with ``on_delete=DO_NOTHING``.
   Django then sends one ``DELETE`` for the object or queryset and leaves the
   cascade to the database, i.e. to tombstone (soft cascade along the real
   foreign keys, RESTRICT, SET NULL). This is the recommended setup behind
   tombstone: the database's own ON DELETE rules are the ones applied, and
   tables Django does not model (project_members, documents, time_entries)
   are cascaded too.

2. ``CProject``, ``CTask``, ... — the same tables with Django's default
   collector semantics (``CASCADE``, ``SET_NULL``, ``RESTRICT``). Django
   SELECTs the related objects and deletes them itself, children first,
   with ``DELETE ... WHERE id IN (...)`` / ``WHERE fk IN (...)`` statements,
   and emulates SET NULL with UPDATEs. Every one of those DELETEs is soft
   through tombstone, and the counts Django reports must equal a hard
   delete's.

The models never mention ``deleted_at``: the application is unmodified.
"""

import uuid

from django.db import models


# --- 1. database cascades (DO_NOTHING) ------------------------------------


class User(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    email = models.TextField()
    name = models.TextField(null=True)

    class Meta:
        managed = False
        db_table = "users"


class Category(models.Model):
    id = models.AutoField(primary_key=True)
    name = models.TextField(unique=True)

    class Meta:
        managed = False
        db_table = "categories"


class Project(models.Model):
    team_id = models.BigIntegerField(null=True)
    category = models.ForeignKey(Category, models.DO_NOTHING, null=True, related_name="projects")
    owner = models.ForeignKey(User, models.DO_NOTHING, null=True, related_name="owned_projects")
    name = models.TextField()

    class Meta:
        managed = False
        db_table = "projects"


class Task(models.Model):
    project = models.ForeignKey(Project, models.DO_NOTHING, related_name="tasks")
    assignee = models.ForeignKey(User, models.DO_NOTHING, null=True, related_name="tasks")
    title = models.TextField()
    done = models.BooleanField(default=False)

    class Meta:
        managed = False
        db_table = "tasks"


class Comment(models.Model):
    task = models.ForeignKey(Task, models.DO_NOTHING, related_name="comments")
    author = models.ForeignKey(User, models.DO_NOTHING, null=True, related_name="comments")
    body = models.TextField()

    class Meta:
        managed = False
        db_table = "comments"


class Attachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    task = models.ForeignKey(Task, models.DO_NOTHING, related_name="attachments")
    filename = models.TextField()
    size_bytes = models.BigIntegerField(default=0)

    class Meta:
        managed = False
        db_table = "attachments"


class Invoice(models.Model):
    project = models.ForeignKey(Project, models.DO_NOTHING, related_name="invoices")
    amount_cents = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = '"billing"."invoices"'


# --- 2. Django's collector (CASCADE / SET_NULL / RESTRICT) ----------------


class CUser(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    email = models.TextField()
    name = models.TextField(null=True)

    class Meta:
        managed = False
        db_table = "users"


class CCategory(models.Model):
    id = models.AutoField(primary_key=True)
    name = models.TextField(unique=True)

    class Meta:
        managed = False
        db_table = "categories"


class CProject(models.Model):
    team_id = models.BigIntegerField(null=True)
    category = models.ForeignKey(CCategory, models.RESTRICT, null=True, related_name="projects")
    owner = models.ForeignKey(CUser, models.SET_NULL, null=True, related_name="owned_projects")
    name = models.TextField()

    class Meta:
        managed = False
        db_table = "projects"


class CTask(models.Model):
    project = models.ForeignKey(CProject, models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey(CUser, models.SET_NULL, null=True, related_name="tasks")
    title = models.TextField()
    done = models.BooleanField(default=False)

    class Meta:
        managed = False
        db_table = "tasks"


class CComment(models.Model):
    task = models.ForeignKey(CTask, models.CASCADE, related_name="comments")
    author = models.ForeignKey(CUser, models.SET_NULL, null=True, related_name="comments")
    body = models.TextField()

    class Meta:
        managed = False
        db_table = "comments"


class CAttachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    task = models.ForeignKey(CTask, models.CASCADE, related_name="attachments")
    filename = models.TextField()
    size_bytes = models.BigIntegerField(default=0)

    class Meta:
        managed = False
        db_table = "attachments"


class CInvoice(models.Model):
    project = models.ForeignKey(CProject, models.CASCADE, related_name="invoices")
    amount_cents = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = '"billing"."invoices"'
