"""Django 5.2 through tombstone against a hard-delete twin, then every
action restored to the exact state before the deletes.

The same ORM calls run on the twin (straight to PostgreSQL, hard deletes)
and through the proxy as the application role (soft deletes): what
``delete()`` returns, the exceptions, and every model's rows and links must
be equal after each step, and the protected database's live rows must equal
the twin's table by table. Then ``tombstone restore --action`` of every
action, newest first, must give back every table (the automatic M2M table
and the explicit through model included) exactly as it was.
"""

import os
import uuid

import psycopg
import pytest

import ormenv

ormenv.configure_django(
    {
        "default": ormenv.django_db(ormenv._need("ORM_TWIN_DSN")),
        "twin": ormenv.django_db(ormenv._need("ORM_TWIN_DSN")),
        "proxy": ormenv.django_db(ormenv._need("ORM_APP_DSN")),
    }
)

from django.db import IntegrityError, connections, transaction  # noqa: E402
from django.db.models import Count, ProtectedError  # noqa: E402

from library.models import Author, Book, Edition, Genre, Publisher, Reader, Review, Shelf, Tag  # noqa: E402

DBS = ("twin", "proxy")
BookTag = Book.tags.through


def seed(db: str) -> None:
    """The same rows on both databases, in the same order (so identity
    values match): 3 publishers, 2 genres, 6 tags, 4 authors (UUID keys) of
    3 books each, 3 tags, 2 editions (composite key) and 2 reviews per book, 3 readers shelving 4 books
    each."""
    with transaction.atomic(using=db):
        publishers = [Publisher.objects.using(db).create(name=f"publisher {i}") for i in range(3)]
        genres = [Genre.objects.using(db).create(name=f"genre {i}") for i in range(2)]
        tags = [Tag.objects.using(db).create(name=f"tag {i}") for i in range(6)]
        books = []
        for a in range(4):
            author = Author.objects.using(db).create(
                id=uuid.UUID(int=a + 1), name=f"author {a}", email=f"a{a}@example.com"
            )
            for b in range(3):
                n = a * 3 + b
                book = Book.objects.using(db).create(
                    title=f"book {n}",
                    isbn=f"isbn-{n:04}",
                    author=author,
                    publisher=publishers[n % 3],
                    genre=genres[n % 2],
                )
                book.tags.set([tags[(n + k) % 6] for k in range(3)])
                for e in range(2):
                    Edition.objects.using(db).create(book=book, number=e + 1, year=2000 + n + e)
                for r in range(2):
                    Review.objects.using(db).create(book=book, stars=1 + (n + r) % 5, body=f"review {n}.{r}")
                books.append(book)
        for r in range(3):
            reader = Reader.objects.using(db).create(name=f"reader {r}")
            for k in range(4):
                Shelf.objects.using(db).create(reader=reader, book=books[(r * 4 + k * 2) % 12], note=f"note {r}.{k}")


def observe(db: str) -> dict:
    """What the application sees: every model's rows and counts, both
    many-to-many relations, and an aggregate over a join."""
    return {
        "publishers": list(Publisher.objects.using(db).order_by("id").values_list("id", "name")),
        "genres": list(Genre.objects.using(db).order_by("id").values_list("id", "name")),
        "tags": list(Tag.objects.using(db).order_by("id").values_list("id", "name")),
        "authors": list(Author.objects.using(db).order_by("id").values_list("id", "name", "email")),
        "books": list(
            Book.objects.using(db).order_by("id").values_list("id", "title", "isbn", "author_id", "publisher_id", "genre_id")
        ),
        "reviews": list(Review.objects.using(db).order_by("id").values_list("id", "book_id", "stars", "body")),
        "editions": list(Edition.objects.using(db).order_by("book_id", "number").values_list("book_id", "number", "year")),
        "readers": list(Reader.objects.using(db).order_by("id").values_list("id", "name")),
        "shelves": list(Shelf.objects.using(db).order_by("id").values_list("id", "reader_id", "book_id", "note")),
        "book_tags": list(BookTag.objects.using(db).order_by("id").values_list("id", "book_id", "tag_id")),
        "tags_of_books": {
            b.id: sorted(t.name for t in b.tags.all()) for b in Book.objects.using(db).order_by("id")
        },
        "books_of_readers": {
            r.id: sorted(b.isbn for b in r.books.all()) for r in Reader.objects.using(db).order_by("id")
        },
        "books_per_publisher": list(
            Publisher.objects.using(db).annotate(n=Count("books")).order_by("id").values_list("id", "n")
        ),
        "books_per_tag": list(Tag.objects.using(db).annotate(n=Count("books")).order_by("id").values_list("id", "n")),
        "counts": {
            m.__name__: m.objects.using(db).count()
            for m in (Publisher, Genre, Tag, Author, Book, Edition, Review, Reader, Shelf, BookTag)
        },
        "orphan_free_reviews": Review.objects.using(db).filter(book__author__isnull=False).count(),
        "books_without_publisher": Book.objects.using(db).filter(publisher__isnull=True).count(),
    }


def both(step, what: str, twin_conn, direct):
    """Run ``step(db)`` on the twin and through the proxy; its results, the
    ORM's view and the live tables must be equal."""
    results = {db: step(db) for db in DBS}
    ormenv.assert_same(results["twin"], results["proxy"], f"{what}: result")
    ormenv.assert_same(observe("twin"), observe("proxy"), f"{what}: what the application sees")
    ormenv.assert_live_state_equal(twin_conn, direct, "library_", what)
    return results["twin"]


@pytest.fixture(autouse=True)
def _close_django_connections():
    yield
    connections.close_all()


def test_django_deletes_equal_the_twin_and_every_action_restores_the_exact_state(twin_conn, direct):
    # The automatic M2M table had no deleted_at; migrate --fix protected it.
    assert direct.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.library_book_tags'::regclass "
        "AND attname = 'deleted_at' AND NOT attisdropped"
    ).fetchone()[0] == 1
    assert twin_conn.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.library_book_tags'::regclass "
        "AND attname = 'deleted_at' AND NOT attisdropped"
    ).fetchone()[0] == 0

    # The binding asked for is the one Django uses (psycopg ClientCursor:
    # literals in the SQL text; Cursor: $1 parameters).
    server = os.environ.get("ORM_DJANGO_BINDING") == "server"
    for db in DBS:
        connections[db].ensure_connection()
        factory = connections[db].connection.cursor_factory
        assert issubclass(factory, psycopg.ClientCursor) != server, factory

    for db in DBS:
        seed(db)
    before = ormenv.checksums(direct)
    assert ormenv.own(before, "library_") == ormenv.own(ormenv.checksums(twin_conn), "library_"), "seeded twin and protected databases differ"
    assert before["library_book_tags"][0] == 36 and before["library_shelf"][0] == 12
    seen_before = observe("proxy")
    ormenv.assert_same(observe("twin"), seen_before, "seeded")
    actions_before = set(ormenv.actions(direct))

    # 1. remove() one link, clear() all of another book's links.
    def remove_tag(db):
        book = Book.objects.using(db).get(isbn="isbn-0004")
        book.tags.remove(Tag.objects.using(db).get(name="tag 5"))
        return sorted(t.name for t in book.tags.all())

    assert both(remove_tag, "book.tags.remove()", twin_conn, direct) == ["tag 0", "tag 4"]

    def clear_tags(db):
        book = Book.objects.using(db).get(isbn="isbn-0001")
        book.tags.clear()
        return book.tags.count()

    assert both(clear_tags, "book.tags.clear()", twin_conn, direct) == 0

    # 2. publisher.delete(): Django sets its books' publisher to NULL itself
    #    (an UPDATE), then deletes the publisher.
    def delete_publisher(db):
        return Publisher.objects.using(db).get(name="publisher 1").delete()

    assert both(delete_publisher, "publisher.delete() (SET_NULL)", twin_conn, direct) == (
        1,
        {"library.Publisher": 1},
    )
    assert observe("proxy")["books_without_publisher"] == 4

    # 3. PROTECT: a genre with books cannot be deleted; nothing changes.
    def delete_genre(db):
        with pytest.raises(ProtectedError) as err:
            Genre.objects.using(db).get(name="genre 0").delete()
        return sorted(o.isbn for o in err.value.protected_objects)

    assert len(both(delete_genre, "genre.delete() (PROTECT)", twin_conn, direct)) == 6

    # 3b. unique=True: a live name cannot be taken twice.
    def duplicate_tag(db):
        with pytest.raises(IntegrityError) as err:
            with transaction.atomic(using=db):
                Tag.objects.using(db).create(name="tag 2")
        return err.value.__cause__.sqlstate

    assert both(duplicate_tag, "Tag.create() of a live unique name", twin_conn, direct) == "23505"

    # 4. author.delete(): Django cascades itself — the books' links, shelves,
    #    reviews, then the books, then the author: several DELETEs in one
    #    transaction (book 1 lost its links in step 1 already, book 2's
    #    publisher is already NULL).
    def delete_author(db):
        return Author.objects.using(db).get(email="a0@example.com").delete()

    assert both(delete_author, "author.delete() (CASCADE)", twin_conn, direct) == (
        1 + 3 + 6 + 6 + 6 + 4,
        {
            "library.Author": 1,
            "library.Book": 3,
            "library.Edition": 6,
            "library.Review": 6,
            "library.Book_tags": 6,
            "library.Shelf": 4,
        },
    )

    # 5. reader.delete(): the explicit through model's rows go with it.
    def delete_reader(db):
        return Reader.objects.using(db).get(name="reader 1").delete()

    assert both(delete_reader, "reader.delete() (through model)", twin_conn, direct) == (
        5,
        {"library.Reader": 1, "library.Shelf": 4},
    )

    # 6. A queryset delete across a join.
    def delete_low_reviews(db):
        return Review.objects.using(db).filter(stars__lte=2, book__author__name="author 2").delete()

    deleted = both(delete_low_reviews, "Review queryset delete()", twin_conn, direct)
    assert deleted[0] > 0, deleted

    # 7. A composite primary key: one edition by its (book, number).
    def delete_edition(db):
        return Edition.objects.using(db).get(book__isbn="isbn-0007", number=2).delete()

    assert both(delete_edition, "edition.delete() (composite key)", twin_conn, direct) == (
        1,
        {"library.Edition": 1},
    )

    # Every delete was soft: all rows are still there, links included.
    ormenv.assert_nothing_removed(direct, before, "after the Django deletes")
    assert ormenv.soft_deleted(direct)["library_book_tags"] == 1 + 3 + 6

    # Restore every action, newest first, from the CLI.
    new = [a for a in ormenv.actions(direct) if a not in actions_before]
    assert len(new) == 7, f"expected 7 actions (remove, clear, publisher, author, reader, reviews, edition), got {new}"
    # author.delete() is one action of five operations (Django's DELETEs of
    # links, shelves, reviews, books and the author, one transaction).
    assert ormenv.operation_tables(direct, new[3]) == [
        ("library_author", 1),
        ("library_book", 1),
        ("library_book_tags", 1),
        ("library_edition", 1),
        ("library_review", 1),
        ("library_shelf", 1),
    ]
    assert ormenv.operation_tables(direct, new[2]) == [("library_publisher", 1)]
    for action in reversed(new):
        ormenv.restore_action(action)

    after = ormenv.checksums(direct)
    diff = {t: (before[t], after.get(t)) for t in before if before[t] != after.get(t)}
    assert not diff, f"after restoring every action, tables differ from before the deletes (before, after): {diff}"
    assert set(after) == set(before)
    assert not any(ormenv.soft_deleted(direct).values()), ormenv.soft_deleted(direct)
    ormenv.assert_same(seen_before, observe("proxy"), "after restore, the application's view")
