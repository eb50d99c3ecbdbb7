"""One registry helper for everything params.yaml names: networks, trainers, losses, conv types.

A :class:`Registry` maps a name to a class and the config dataclass that class declares. The config of
an entry is built from plain data (a params.yaml mapping) by :meth:`Registry.config`: the ``name`` key
picks the entry (the registry's default when absent), every other key must be a field of that entry's
config, and a bad name or key is one :class:`~unmask.errors.ConfigError` naming the dotted key and the
valid choices. So ``generator: {name: unet, depth: 5, conv: gated}`` and ``generator: {name: stargan,
blocks: dmfb}`` are both checked, each against its own family's fields.

Adding a family is one module that defines its class and config and registers them::

    @GENERATORS.register("unet", UNetConfig)
    class UNet(nn.Module): ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from unmask.errors import ConfigError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    cls: T
    config: type | None     # the entry's config dataclass (with a ``name`` field), or None: no options
    capabilities: frozenset[str] = frozenset()   # what it can do (unmask.catalog.capabilities)


class Registry(Generic[T]):
    """``name -> (class, config dataclass)`` for one kind of part (``kind`` is used in messages)."""

    def __init__(self, kind: str, default: str | None = None):
        self.kind = kind
        self.default = default
        self._entries: dict[str, Entry[T]] = {}

    # ------------------------------------------------------------------ registration
    def register(self, name: str, config: type | None = None, capabilities: Iterable[str] = ()) -> Callable[[T], T]:
        """Class decorator (also callable on a function or object): register it as ``name``, able to do
        ``capabilities`` (:class:`~unmask.catalog.capabilities.Capability` values)."""
        if config is not None:
            if "name" not in {f.name for f in dataclasses.fields(config)}:
                raise TypeError(f"{config.__name__} must have a field `name` (the entry it configures)")

        def deco(obj: T) -> T:
            if name in self._entries:
                raise TypeError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = Entry(name, obj, config, frozenset(capabilities))
            return obj
        return deco

    # ------------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: Any, key: str) -> Entry[T]:
        """The entry ``name``; an unknown name raises ConfigError naming ``key`` and the choices."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"{key}: unknown {self.kind} {name!r}; choose one of "
                              f"{', '.join(self.names())}") from None

    def get(self, name: Any, key: str) -> T:
        """The registered class (or object) ``name``."""
        return self.entry(name, key).cls

    def capabilities(self, cfg: Any) -> frozenset[str]:
        """What the entry ``cfg`` (a config made by :meth:`config`, or a bare name) can do: its declared
        capabilities, narrowed or widened by the config's own ``capabilities(declared)`` when it has one."""
        name = cfg if isinstance(cfg, str) else getattr(cfg, "name", None)
        declared = self.entry(name, self.kind).capabilities
        own = getattr(cfg, "capabilities", None)
        return frozenset(own(declared)) if callable(own) else declared

    # ------------------------------------------------------------------ configs
    def config(self, raw: Any, key: str) -> Any:
        """The config dataclass instance ``raw`` describes: ``raw`` is a mapping (``name`` picks the
        entry, the registry's default when absent) or already a config of a registered entry."""
        if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
            self.entry(getattr(raw, "name", None), f"{key}.name")
            return raw
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}: must be a mapping, got {raw!r}")
        name = raw.get("name", self.default)
        entry = self.entry(name, f"{key}.name")
        if entry.config is None:
            extra = sorted(set(raw) - {"name"})
            if extra:
                raise ConfigError(f"{key}.{extra[0]}: unknown key ({self.kind} {name!r} takes no options)")
            return name
        fields = {f.name for f in dataclasses.fields(entry.config)}
        unknown = sorted(set(raw) - fields)
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}: unknown key for {self.kind} {name!r} "
                              f"(valid: {', '.join(sorted(fields))})")
        try:
            return entry.config(**{**raw, "name": name})
        except ConfigError as err:
            # configs name their own fields as "<family>.<field>"; re-anchor them under ``key``
            text = str(err)
            field, sep, msg = text.partition(": ")
            leaf = field.rsplit(".", 1)[-1]
            if sep and leaf in fields:
                raise ConfigError(f"{key}.{leaf}: {msg}") from None
            raise

    def build(self, cfg: Any, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the entry ``cfg`` (a config made by :meth:`config`, or a bare name for an entry
        without options) names: ``cls(cfg, *args, **kwargs)`` (``cls(*args, **kwargs)`` without config)."""
        name = cfg if isinstance(cfg, str) else cfg.name
        entry = self.entry(name, self.kind)
        if entry.config is None:
            return entry.cls(*args, **kwargs)
        return entry.cls(cfg, *args, **kwargs)
