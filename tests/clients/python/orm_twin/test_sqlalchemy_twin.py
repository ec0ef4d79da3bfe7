"""SQLAlchemy 2.1 ORM through tombstone against a hard-delete twin, then
every action restored to the exact state before the deletes (see
sa_models.py for the three cascade flavours)."""

import pytest
from sqlalchemy import create_engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ormenv
from sa_models import Child, Grandchild, Item, Owner, Parent, PChild, PGrandchild, PParent

ENGINES = {
    "twin": create_engine(ormenv.sqlalchemy_url(ormenv._need("ORM_TWIN_DSN"))),
    "proxy": create_engine(ormenv.sqlalchemy_url(ormenv._need("ORM_APP_DSN"))),
}
MODELS = (Parent, Child, Grandchild, PParent, PChild, PGrandchild, Owner, Item)


@pytest.fixture(autouse=True, scope="module")
def _dispose():
    yield
    for engine in ENGINES.values():
        engine.dispose()


def seed(engine) -> None:
    """4 parents of each cascading kind with 3 children of 2 grandchildren
    each; 3 owners of 3 items each. The same order on both databases."""
    with Session(engine) as s, s.begin():
        for kind, child, grandchild in ((Parent, Child, Grandchild), (PParent, PChild, PGrandchild)):
            for p in range(4):
                parent = kind(name=f"{kind.__name__} {p}")
                for c in range(3):
                    ch = child(name=f"child {p}.{c}")
                    ch.grandchildren = [grandchild(name=f"grandchild {p}.{c}.{g}") for g in range(2)]
                    parent.children.append(ch)
                s.add(parent)
                s.flush()
        for o in range(3):
            s.add(Owner(name=f"owner {o}", items=[Item(name=f"item {o}.{i}") for i in range(3)]))


def observe(engine) -> dict:
    """Every mapped table's rows as the ORM loads them, and the
    relationships' collections."""
    with Session(engine) as s:
        seen = {}
        for model in MODELS:
            cols = [c.key for c in model.__table__.columns if c.key != "deleted_at"]
            seen[model.__tablename__] = [
                tuple(getattr(o, k) for k in cols) for o in s.scalars(select(model).order_by(model.id))
            ]
        seen["tree"] = [
            (p.name, [(c.name, [g.name for g in c.grandchildren]) for c in p.children])
            for kind in (Parent, PParent)
            for p in s.scalars(select(kind).order_by(kind.id))
        ]
        seen["owners"] = [(o.name, [i.name for i in o.items]) for o in s.scalars(select(Owner).order_by(Owner.id))]
        return seen


def both(step, what, twin_conn, direct):
    results = {db: step(engine) for db, engine in ENGINES.items()}
    ormenv.assert_same(results["twin"], results["proxy"], f"{what}: result")
    ormenv.assert_same(observe(ENGINES["twin"]), observe(ENGINES["proxy"]), f"{what}: what the ORM loads")
    ormenv.assert_live_state_equal(twin_conn, direct, "sa_", what)
    return results["twin"]


def test_sqlalchemy_cascades_equal_the_twin_and_every_action_restores_the_exact_state(twin_conn, direct):
    for engine in ENGINES.values():
        seed(engine)
    before = ormenv.checksums(direct)
    assert ormenv.own(before, "sa_") == ormenv.own(ormenv.checksums(twin_conn), "sa_"), "seeded twin and protected databases differ"
    seen_before = observe(ENGINES["proxy"])
    actions_before = set(ormenv.actions(direct))

    # 1. cascade="all, delete-orphan": the ORM loads the tree and deletes
    #    grandchildren, children, then the parent.
    def delete_parent(engine):
        with Session(engine) as s, s.begin():
            s.delete(s.scalars(select(Parent).where(Parent.name == "Parent 0")).one())
        return None

    both(delete_parent, "session.delete(parent) (all, delete-orphan)", twin_conn, direct)

    # 2. delete-orphan: a child removed from its parent's collection is
    #    deleted with its grandchildren.
    def orphan_child(engine):
        with Session(engine) as s, s.begin():
            parent = s.scalars(select(Parent).where(Parent.name == "Parent 1")).one()
            parent.children.remove(parent.children[1])
        return None

    both(orphan_child, "children.remove(child) (delete-orphan)", twin_conn, direct)

    # 3. passive_deletes=True, children not loaded: one DELETE, the
    #    database cascades.
    def delete_pparent_unloaded(engine):
        with Session(engine) as s, s.begin():
            s.delete(s.scalars(select(PParent).where(PParent.name == "PParent 0")).one())
        return None

    both(delete_pparent_unloaded, "session.delete(pparent) (passive_deletes, unloaded)", twin_conn, direct)

    # 4. passive_deletes=True, children loaded: the ORM deletes the loaded
    #    children itself, the database the rest.
    def delete_pparent_loaded(engine):
        with Session(engine) as s, s.begin():
            parent = s.scalars(select(PParent).where(PParent.name == "PParent 1")).one()
            assert len(parent.children) == 3
            s.delete(parent)
        return None

    both(delete_pparent_loaded, "session.delete(pparent) (passive_deletes, loaded)", twin_conn, direct)

    # 5. A default relationship: the ORM sets items.owner_id to NULL, then
    #    deletes the owner.
    def delete_owner(engine):
        with Session(engine) as s, s.begin():
            s.delete(s.scalars(select(Owner).where(Owner.name == "owner 1")).one())
        return None

    both(delete_owner, "session.delete(owner) (ORM SET NULL)", twin_conn, direct)

    # 6. An ORM bulk delete of children that still have grandchildren
    #    (NO ACTION key): refused with 23503 on both, nothing changes.
    def bulk_delete_children(engine):
        with Session(engine) as s:
            with pytest.raises(IntegrityError) as err:
                with s.begin():
                    parent_id = s.scalars(select(Parent.id).where(Parent.name == "Parent 2")).one()
                    s.execute(delete(Child).where(Child.parent_id == parent_id))
        return err.value.orig.sqlstate

    assert both(bulk_delete_children, "delete(Child) with grandchildren (NO ACTION)", twin_conn, direct) == "23503"

    # 7. An ORM bulk delete that the keys allow: grandchildren of one parent.
    def bulk_delete_grandchildren(engine):
        with Session(engine) as s, s.begin():
            ids = select(Child.id).join(Parent).where(Parent.name == "Parent 3")
            return s.execute(delete(Grandchild).where(Grandchild.child_id.in_(ids))).rowcount

    assert both(bulk_delete_grandchildren, "bulk delete(Grandchild)", twin_conn, direct) == 6

    ormenv.assert_nothing_removed(direct, before, "after the SQLAlchemy deletes")
    new = [a for a in ormenv.actions(direct) if a not in actions_before]
    assert len(new) == 6, f"expected 6 actions, got {new}"
    # The ORM's own cascade is one action of a DELETE per row (6
    # grandchildren, 3 children, the parent); a passive delete is one
    # operation that the database (tombstone) cascaded.
    assert ormenv.operation_tables(direct, new[0]) == [("sa_child", 3), ("sa_grandchild", 6), ("sa_parent", 1)]
    assert ormenv.operation_tables(direct, new[2]) == [("sa_pparent", 1)]
    for action in reversed(new):
        ormenv.restore_action(action)

    after = ormenv.checksums(direct)
    diff = {t: (before[t], after.get(t)) for t in before if before[t] != after.get(t)}
    assert not diff, f"after restoring every action, tables differ from before the deletes (before, after): {diff}"
    assert set(after) == set(before)
    assert not any(ormenv.soft_deleted(direct).values()), ormenv.soft_deleted(direct)
    ormenv.assert_same(seen_before, observe(ENGINES["proxy"]), "after restore, what the ORM loads")
