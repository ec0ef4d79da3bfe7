"""SQLAlchemy 2.x ORM models: three small parent/child/grandchild schemas.

- ``Parent`` -> ``Child`` -> ``Grandchild``: ``cascade="all, delete-orphan"``
  with plain foreign keys (NO ACTION): the ORM loads the children and
  deletes them itself, grandchildren first, one DELETE per row.
- ``PParent`` -> ``PChild`` -> ``PGrandchild``: the same cascade with
  ``passive_deletes=True`` and ``ON DELETE CASCADE`` keys: the ORM sends
  one DELETE for the parent and leaves the rest to the database (tombstone).
- ``Owner`` -> ``Item``: a default relationship (no delete cascade): the ORM
  sets ``owner_id`` to NULL itself before deleting the owner.

Every table has ``deleted_at``; the application never sets it.
"""

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "sa_parent"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    children: Mapped[list["Child"]] = relationship(
        back_populates="parent", cascade="all, delete-orphan", order_by="Child.id"
    )


class Child(Base):
    __tablename__ = "sa_child"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("sa_parent.id"))
    name: Mapped[str] = mapped_column(String(50))
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    parent: Mapped[Parent] = relationship(back_populates="children")
    grandchildren: Mapped[list["Grandchild"]] = relationship(
        back_populates="child", cascade="all, delete-orphan", order_by="Grandchild.id"
    )


class Grandchild(Base):
    __tablename__ = "sa_grandchild"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("sa_child.id"))
    name: Mapped[str] = mapped_column(String(50))
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    child: Mapped[Child] = relationship(back_populates="grandchildren")


class PParent(Base):
    __tablename__ = "sa_pparent"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    children: Mapped[list["PChild"]] = relationship(
        back_populates="parent",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="PChild.id",
    )


class PChild(Base):
    __tablename__ = "sa_pchild"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("sa_pparent.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    parent: Mapped[PParent] = relationship(back_populates="children")
    grandchildren: Mapped[list["PGrandchild"]] = relationship(
        back_populates="child",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="PGrandchild.id",
    )


class PGrandchild(Base):
    __tablename__ = "sa_pgrandchild"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("sa_pchild.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    child: Mapped[PChild] = relationship(back_populates="grandchildren")


class Owner(Base):
    __tablename__ = "sa_owner"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    items: Mapped[list["Item"]] = relationship(back_populates="owner", order_by="Item.id")


class Item(Base):
    __tablename__ = "sa_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("sa_owner.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(50))
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)
    owner: Mapped[Owner | None] = relationship(back_populates="items")
