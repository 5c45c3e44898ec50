"""Reads that run very often with new values, compiled to SQL once.

Django turns a queryset into SQL every time it runs it, and for a short read that is most of the
cost: reading one order by its number takes about 1 ms of CPU on SpatiaLite, of which the SQL
itself is 0.07 ms. Every order socket opens with a snapshot of its order, and a crowd of sockets
reconnects at once after a deploy, so the reads behind a snapshot are `Compiled`: written as
querysets (the ORM stays the one place for their shape), compiled on first use in each thread,
and afterwards run as that SQL with the new values, their rows converted and turned into model
instances (or dicts, for ``values()``) the way the ORM does it.

    order_by_number = Compiled(lambda number: Order.objects.filter(number=number), str)
    order = order_by_number.first("2612...")

The arguments a query takes are declared by type (``str`` or ``int``): the queryset is built
once with stand-in values, which must reach the SQL's parameters unchanged (equality lookups,
not ``__in`` lists, ``__contains`` or anything the ORM rewrites). A query whose stand-in does not
come out is refused when it is first compiled.
"""

import threading
from collections.abc import Callable

from django.db import connections
from django.db.models.query import ModelIterable, ValuesIterable, get_related_populators

_STANDINS = {str: lambda i: f"\x00compiled-parameter-{i}\x00", int: lambda i: -(2**52) - i}


class _Plan:
    """One query compiled for one thread's database connection."""

    def __init__(self, queryset, standins):
        self.connection = connections[queryset.db]
        self.db = queryset.db
        query = queryset.query
        compiler = query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        if not sql:  # an empty result the ORM knows without asking (e.g. `pk__in=[]`)
            raise ValueError("a compiled query must reach the database")
        self.sql = sql
        slots = []
        found = set()
        for value in params:
            slot = next(
                (i for i, s in enumerate(standins) if type(s) is type(value) and s == value), None
            )
            if slot is not None:
                found.add(slot)
            slots.append((slot, value))
        missing = set(range(len(standins))) - found
        if missing:
            raise ValueError(f"parameter(s) {sorted(missing)} did not reach the SQL unchanged")
        self.slots = slots
        self.compiler = compiler
        self.converters = compiler.get_converters(
            [s[0] for s in compiler.select[: compiler.col_count]]
        )
        if queryset._iterable_class not in (ModelIterable, ValuesIterable):
            raise ValueError("a compiled query returns model instances or values() dicts")
        if queryset._prefetch_related_lookups:
            raise ValueError("a compiled query runs one SQL statement: no prefetch_related")
        self.values = queryset._iterable_class is ValuesIterable
        if self.values:
            self.names = [*query.extra_select, *query.values_select, *query.annotation_select]
            return
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.model = klass_info["model"]
        self.model_slice = slice(start, end)
        self.init_list = [f[0].target.attname for f in select[start:end]]
        self.populators = get_related_populators(klass_info, select, queryset.db)
        self.annotations = list(compiler.annotation_col_map.items())

    def run(self, args) -> list:
        params = [value if slot is None else args[slot] for slot, value in self.slots]
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        if self.values:
            names = self.names
            return [dict(zip(names, row, strict=True)) for row in rows]
        out = []
        for row in rows:
            obj = self.model.from_db(self.db, self.init_list, row[self.model_slice])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, index in self.annotations:
                setattr(obj, name, row[index])
            out.append(obj)
        return out


class Compiled:
    """A queryset compiled once per thread and database, run with new values (module docs)."""

    def __init__(self, build: Callable, *types: type):
        unknown = [t for t in types if t not in _STANDINS]
        if unknown:
            raise TypeError(f"compiled queries take str and int arguments, not {unknown}")
        self._build = build
        self._types = types
        self._local = threading.local()

    def _plan(self) -> _Plan:
        plan = getattr(self._local, "plan", None)
        if plan is None:
            standins = [_STANDINS[t](i) for i, t in enumerate(self._types)]
            queryset = self._build(*standins)
            plan = self._local.plan = _Plan(queryset, standins)
        elif plan.connection is not connections[plan.db]:  # the settings changed (tests)
            self._local.plan = None
            return self._plan()
        return plan

    def all(self, *args) -> list:
        if len(args) != len(self._types):
            raise TypeError(f"expected {len(self._types)} argument(s), got {len(args)}")
        for value, kind in zip(args, self._types, strict=True):
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return self._plan().run(args)

    def first(self, *args):
        found = self.all(*args)
        return found[0] if found else None
