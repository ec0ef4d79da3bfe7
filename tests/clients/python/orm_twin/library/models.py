"""A Django model set as a new application would write it (managed, created
by ``migrate``), with every relation kind tombstone must reproduce: an
automatic many-to-many table (``Book.tags``, no ``deleted_at``: ``tombstone
migrate --apply --fix`` protects it as a link table), an explicit through
model (``Shelf``), ``CASCADE``, ``SET_NULL``, ``PROTECT``, a UUID primary
key, a composite primary key (``Edition``) and ``unique=True`` fields. Every model table has ``deleted_at``; the
application never reads or writes it."""

import uuid

from django.db import models


class Publisher(models.Model):
    name = models.CharField(max_length=100, unique=True)
    deleted_at = models.DateTimeField(null=True)


class Genre(models.Model):
    name = models.CharField(max_length=100, unique=True)
    deleted_at = models.DateTimeField(null=True)


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)
    deleted_at = models.DateTimeField(null=True)


class Author(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=100, unique=True)
    deleted_at = models.DateTimeField(null=True)


class Book(models.Model):
    title = models.CharField(max_length=200)
    isbn = models.CharField(max_length=20, unique=True)
    author = models.ForeignKey(Author, models.CASCADE, related_name="books")
    publisher = models.ForeignKey(Publisher, models.SET_NULL, null=True, related_name="books")
    genre = models.ForeignKey(Genre, models.PROTECT, related_name="books")
    tags = models.ManyToManyField(Tag, related_name="books")
    deleted_at = models.DateTimeField(null=True)


class Review(models.Model):
    book = models.ForeignKey(Book, models.CASCADE, related_name="reviews")
    stars = models.IntegerField()
    body = models.TextField()
    deleted_at = models.DateTimeField(null=True)


class Reader(models.Model):
    name = models.CharField(max_length=100)
    books = models.ManyToManyField(Book, through="Shelf", related_name="readers")
    deleted_at = models.DateTimeField(null=True)


class Shelf(models.Model):
    reader = models.ForeignKey(Reader, models.CASCADE)
    book = models.ForeignKey(Book, models.CASCADE)
    note = models.CharField(max_length=100)
    deleted_at = models.DateTimeField(null=True)


class Edition(models.Model):
    pk = models.CompositePrimaryKey("book_id", "number")
    book = models.ForeignKey(Book, models.CASCADE, related_name="editions")
    number = models.IntegerField()
    year = models.IntegerField()
    deleted_at = models.DateTimeField(null=True)
