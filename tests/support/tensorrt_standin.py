"""TensorRT stand-ins built from the manifests of NVIDIA's real bindings
(``../shared/reference/tensorrt_api``): the stand-in of version X has exactly X's
module-level names, classes, enum members and class members, and nothing more.

Behaviour comes from plain classes (``simulated.py``); a behaviour's public member that X
lacks is left out, a member X has that no behaviour simulates raises when used, and
reading or setting a public name X lacks raises ``AttributeError``, as the real bindings
do. Every public name used is recorded as ``(class, member)`` (``("tensorrt", name)`` at
module level), so a test can check the uses against each version's manifest.
"""

import functools
import glob
import json
import os
import re
import sys
import types
from typing import Any, Callable, Dict, List, Optional, Tuple

from support.reference import REFERENCE_DIR
from support.tensorrt_simulated import behaviours

MANIFEST_DIR = os.path.join(str(REFERENCE_DIR), "tensorrt_api")
MODULE = "tensorrt"
# The module's DataType aliases (``trt.float32`` is ``DataType.FLOAT``).
DTYPE_ALIASES = {
    "float32": "FLOAT",
    "float16": "HALF",
    "bfloat16": "BF16",
    "int8": "INT8",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "bool": "BOOL",
    "fp8": "FP8",
    "fp4": "FP4",
    "int4": "INT4",
    "e8m0": "E8M0",
}

Version = Tuple[int, ...]
Use = Tuple[str, str]


def _numbers(text: str) -> Version:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def manifest_paths() -> Dict[Version, str]:
    """The full-TensorRT manifests by release (the lean runtimes' are left out)."""
    paths = glob.glob(os.path.join(MANIFEST_DIR, "tensorrt-*.json"))
    return {_numbers(os.path.basename(path)): path for path in paths}


def manifest_for(version: str) -> Dict[str, Any]:
    """The manifest of the newest release at or below ``version`` (8.2 and 8.3, older
    than every manifest, get 8.4's: the oldest read from a real wheel)."""
    paths = manifest_paths()
    if not paths:
        raise FileNotFoundError("no TensorRT manifests in {}".format(MANIFEST_DIR))
    wanted = _numbers(version)
    older = [release for release in paths if release <= wanted]
    with open(paths[max(older) if older else min(paths)]) as stream:
        return json.load(stream)


class Recorder:
    """The public TensorRT names a run used (not those the simulation itself reads)."""

    def __init__(self) -> None:
        self.uses = set()  # type: Set[Use]
        self.paused = 0

    def add(self, owner: str, member: str) -> None:
        if not self.paused:
            self.uses.add((owner, member))

    def unrecorded(self, simulated: Any) -> Any:
        """``simulated`` (a function or property) running without recording its reads."""
        if isinstance(simulated, property):
            getter, setter = simulated.fget, simulated.fset
            return property(
                self.unrecorded(getter) if getter else None,
                self.unrecorded(setter) if setter else None,
            )
        if not callable(simulated):
            return simulated

        @functools.wraps(simulated)
        def run(*args: Any, **kwargs: Any) -> Any:
            self.paused += 1
            try:
                return simulated(*args, **kwargs)
            finally:
                self.paused -= 1

        return run


class _Unsimulated:
    """A manifest member no behaviour simulates: it exists, but using it fails."""

    def __init__(self, owner: str, name: str) -> None:
        self.owner, self.name = owner, name

    def __get__(self, instance: Any, owner: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(
                "TensorRT stand-in: {}.{} is not simulated".format(self.owner, self.name)
            )

        return call

    def __set__(self, instance: Any, value: Any) -> None:
        raise NotImplementedError(
            "TensorRT stand-in: setting {}.{} is not simulated".format(self.owner, self.name)
        )


def _public(name: str) -> bool:
    return not name.startswith("_")


class _StandInType(type):
    """Class-level reads of public names are checked and recorded too."""

    def __getattribute__(cls, name: str) -> Any:
        if _public(name):
            _check(cls, name, "read")
        return type.__getattribute__(cls, name)


def _standin_class(klass: type) -> Optional[type]:
    """The most derived stand-in class of ``klass`` (itself, or a base of a user subclass)."""
    for base in klass.__mro__:
        if "_standin_owner" in base.__dict__:
            return base
    return None


def _check(klass: type, name: str, how: str) -> None:
    """Allow ``name`` if the manifest class has it (recording the use) or a user subclass
    defines it; else ``AttributeError`` as the real bindings raise."""
    for base in klass.__mro__:
        if "_standin_owner" in base.__dict__:
            break
        if name in base.__dict__:  # a Python subclass's own member
            return
    standin = _standin_class(klass)
    if standin is None:
        return
    owner = type.__getattribute__(standin, "_standin_owner")
    members = type.__getattribute__(standin, "_standin_members")
    if name not in members:
        raise AttributeError(
            "TensorRT {} has no {}.{} ({})".format(
                type.__getattribute__(standin, "_standin_version"), owner, name, how
            )
        )
    type.__getattribute__(standin, "_standin_recorder").add(owner, name)


class StandInObject(object, metaclass=_StandInType):
    """Base of every stand-in class: instance reads and writes are checked like the
    class's; an instance of a Python subclass keeps its own attributes, as pybind11's do."""

    def __getattribute__(self, name: str) -> Any:
        if _public(name) and not self._own_attribute(name):
            _check(type(self), name, "read")
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        subclassed = "_standin_owner" not in type(self).__dict__
        if _public(name) and not subclassed:
            _check(type(self), name, "set")
        object.__setattr__(self, name, value)

    def _own_attribute(self, name: str) -> bool:
        subclassed = "_standin_owner" not in type(self).__dict__
        return subclassed and name in object.__getattribute__(self, "__dict__")


class EnumMember(StandInObject):
    """A pybind11 enum value: ``name``, ``value``, ``int()``, equality and hashing."""

    def _setup(self, owner: str, name: str, value: int) -> "EnumMember":
        self._owner, self._name, self._value = owner, name, value
        return self

    name = property(lambda self: self._name)
    value = property(lambda self: self._value)

    def __int__(self) -> int:
        return self._value

    __index__ = __int__

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, EnumMember) and (self._owner, self._name) == (
            other._owner,
            other._name,
        )

    def __hash__(self) -> int:
        return hash((self._owner, self._name))

    def __repr__(self) -> str:
        return "<{}.{}: {}>".format(self._owner, self._name, self._value)


def _kind(description: Any) -> str:
    """``"method"``, ``"property"``, ``"nested"`` (a nested enum) or a type name."""
    if isinstance(description, list):
        return "method"
    if description.startswith("property"):
        return "property"
    if description == "pybind11_type":
        return "nested"
    return description


def _enum_class(
    version: str, owner: str, name: str, members: List[str], recorder: Recorder
) -> type:
    namespace = {
        "_standin_owner": owner,
        "_standin_version": version,
        "_standin_recorder": recorder,
        "_standin_members": frozenset(members + ["name", "value"]),
    }
    enum = _StandInType(name, (EnumMember,), namespace)
    for value, member in enumerate(members):
        instance = object.__new__(enum)
        instance._setup(owner, member, value)
        type.__setattr__(enum, member, instance)
    return enum


def _class(
    version: str,
    name: str,
    spec: Dict[str, Any],
    behaviour: Optional[type],
    recorder: Recorder,
) -> type:
    members = spec["members"]
    kinds = {member: _kind(description) for member, description in members.items()}
    if name in kinds.values():  # an enum: its members are typed by the class itself
        values = [member for member, kind in kinds.items() if kind == name]
        return _enum_class(version, name, name, values, recorder)
    namespace = {
        "_standin_owner": name,
        "_standin_version": version,
        "_standin_recorder": recorder,
        "_standin_members": frozenset(m for m in members if _public(m)),
    }  # type: Dict[str, Any]
    simulated = dict(vars(behaviour)) if behaviour is not None else {}
    for member, value in simulated.items():
        if not _public(member) and member not in ("__dict__", "__weakref__", "__module__"):
            namespace[member] = value  # private helpers and dunders (len, indexing, bytes)
    if not isinstance(members.get("__init__"), list):  # pybind11: no constructor
        namespace["__init__"] = _no_constructor(name)
    elif "__init__" not in simulated:
        namespace["__init__"] = _Unsimulated(name, "__init__").__get__(None, None)
    else:
        namespace["__init__"] = recorder.unrecorded(simulated["__init__"])
    for member, kind in kinds.items():
        if not _public(member):
            continue
        if kind == "nested":
            values = [m for m, k in kinds.items() if k == member]
            namespace[member] = _enum_class(version, name, member, values, recorder)
        elif member in simulated:
            namespace[member] = recorder.unrecorded(simulated[member])
        elif kind in ("method", "property"):
            namespace[member] = _Unsimulated(name, member)
    return _StandInType(name, (StandInObject,), namespace)


def _no_constructor(name: str) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TypeError("tensorrt.{}: No constructor defined!".format(name))

    return __init__


class _Module(types.ModuleType):
    """``tensorrt`` with its reads recorded (and refused where the manifest lacks them)."""

    def __getattribute__(self, name: str) -> Any:
        if _public(name) and name not in ("__version__",):
            names = types.ModuleType.__getattribute__(self, "_standin_names")
            if name not in names:
                raise AttributeError(
                    "module 'tensorrt' {} has no attribute '{}'".format(
                        types.ModuleType.__getattribute__(self, "__version__"), name
                    )
                )
            types.ModuleType.__getattribute__(self, "_standin_recorder").add(MODULE, name)
        return types.ModuleType.__getattribute__(self, name)


def standin_tensorrt(
    version: str,
    behaviours: Callable[[Any], Dict[str, Any]],
    recorder: Optional[Recorder] = None,
) -> types.ModuleType:
    """A ``tensorrt`` module of ``version`` with the names of its manifest.

    ``behaviours(trt)`` returns simulated classes and module functions by name; they may
    refer to ``trt`` (the module being made) when called.
    """
    manifest = manifest_for(version)
    recorder = recorder or Recorder()
    trt = _Module(MODULE)
    object.__setattr__(trt, "__version__", version)
    object.__setattr__(trt, "_standin_recorder", recorder)
    object.__setattr__(trt, "_standin_manifest", manifest["version"])
    simulated = behaviours(trt)
    classes = {
        name: _class(version, name, spec, simulated.get(name), recorder)
        for name, spec in manifest["classes"].items()
    }
    for name, made in classes.items():
        object.__setattr__(trt, name, made)
    names = set(classes)
    for name, kind in manifest["module"].items():
        names.add(name)
        if kind == "DataType":
            value = type.__getattribute__(classes["DataType"], DTYPE_ALIASES[name])
        elif kind == "module":
            value = __import__(name) if name != MODULE else trt
        elif name in simulated:
            value = recorder.unrecorded(simulated[name])
        elif isinstance(kind, list) or kind == "function":
            value = _Unsimulated(MODULE, name).__get__(None, None)
        else:  # a stray name of the real module (e.g. 11.x's ``value``)
            value = None
        object.__setattr__(trt, name, value)
    object.__setattr__(trt, "_standin_names", frozenset(names))
    return trt


TRT_MODULES = (
    "tensorrt",
    "fanet.runtime.trt.logger",
    "fanet.runtime.trt.backend",
    "fanet.runtime.trt.builder",
    "fanet.runtime.trt.engine_cache",
    "fanet.runtime.trt.machine",
    "fanet.runtime.trt.precision",
)
# 8.2 (the Jetson Nano) is older than every manifest: its branch is checked against 8.4's.
VERSIONS = ["8.2.1"] + [".".join(map(str, v)) for v in sorted(manifest_paths())]


def install_standin(
    monkeypatch: Any, version: str, cuda: Any, recorder: Optional[Recorder] = None, **knobs: Any
) -> types.ModuleType:
    """Make ``import tensorrt`` give the stand-in of ``version`` (its engines running on
    ``cuda``; ``knobs`` for ``tensorrt_simulated.behaviours``) and drop the modules that
    read it, so they import again against it; returns the stand-in."""
    import fanet.runtime.trt as package

    trt = standin_tensorrt(version, behaviours(cuda, **knobs), recorder)
    for name in TRT_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(package, name.rpartition(".")[2], raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt
