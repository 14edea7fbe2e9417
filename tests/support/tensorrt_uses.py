"""Every TensorRT name the project's TensorRT code uses, read from its source.

Types are followed the way a reader follows them: ``trt.X(...)`` makes an X, parameters and
assignments annotated ``"trt.X"`` are Xs, a method's result has the type its pybind11
signature in a manifest gives, ``self._x`` keeps the type it was assigned, and a project
function returns what its annotation says (``List["trt.X"]`` for loops over its result).
A use is ``(class, member)`` for ``obj.member`` on an X or on the class X itself, and
``("tensorrt", name)`` for ``trt.name``. Members of a nested enum (``ILogger.Severity``)
count as members of the class holding it, as the manifests list them.
"""

import ast
import re
from typing import Any, Dict, Iterable, Optional, Set, Tuple

MODULE = "tensorrt"
Use = Tuple[str, str]
# A type: ("module",), ("class", X) for the class object X, ("instance", X) for an X.
Type = Tuple[str, ...]
_RETURN = re.compile(r"->\s*tensorrt(?:_bindings)?\.tensorrt\.(\w+)")
_ANNOTATION = re.compile(r"^(?:List\[|Optional\[)?[\"']?trt\.(\w+)[\"']?\]?$")


def _string(node: ast.AST) -> Optional[str]:
    """The text of a string literal (``ast.Str`` before Python 3.8)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return getattr(node, "s", None) if type(node).__name__ == "Str" else None


def _annotation(node: Optional[ast.AST]) -> Tuple[Optional[str], bool]:
    """(TensorRT class, is a list of them) of an annotation such as ``"trt.ILayer"``."""
    if node is None:
        return None, False
    text = _string(node)
    if text is None:
        text = _source(node)
    match = _ANNOTATION.match(text.replace(" ", ""))
    return (match.group(1), text.startswith("List[")) if match else (None, False)


def _source(node: ast.AST) -> str:
    """The dotted name or subscript text of an annotation expression."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return _source(node.value) + "." + node.attr
    if isinstance(node, ast.Subscript):
        inner = node.slice
        inner = getattr(inner, "value", inner) if type(inner).__name__ == "Index" else inner
        return "{}[{}]".format(_source(node.value), _string(inner) or _source(inner))
    return ""


class _Manifests:
    """Classes, nested enums and method return types, over every version's manifest."""

    def __init__(self, manifests: Iterable[Dict[str, Any]]) -> None:
        self.classes = set()  # type: Set[str]
        self.nested = set()  # type: Set[Tuple[str, str]]
        self.returns = {}  # type: Dict[Tuple[str, str], str]
        for manifest in manifests:
            for name, spec in manifest["classes"].items():
                self.classes.add(name)
                for member, description in spec["members"].items():
                    if description == "pybind11_type":
                        self.nested.add((name, member))
                    elif isinstance(description, list):
                        found = _RETURN.search(description[0])
                        if found:
                            self.returns[(name, member)] = found.group(1)


class _Function(ast.NodeVisitor):
    """Walks one function body in order, typing names and collecting uses."""

    def __init__(self, scope: "_ModuleScope", owner: Optional[str]) -> None:
        self.scope = scope
        self.owner = owner  # the enclosing class, for self._x and self.method()
        self.names = {}  # type: Dict[str, Type]
        self.iterables = {}  # type: Dict[str, Type]

    def run(self, function: Any) -> None:
        arguments = function.args
        for argument in arguments.args + arguments.kwonlyargs:
            found, many = _annotation(argument.annotation)
            if found:
                (self.iterables if many else self.names)[argument.arg] = ("instance", found)
        for statement in function.body:
            self.visit(statement)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        inner = _Function(self.scope, self.owner)
        inner.names.update(self.names)
        inner.run(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.visit_class(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        typed = self.type_of(node.value)
        for target in node.targets:
            self._bind(target, typed, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        found, _ = _annotation(node.annotation)
        typed = ("instance", found) if found else self.type_of(node.value) if node.value else None
        self._bind(node.target, typed, node.value)

    def _bind(self, target: ast.AST, typed: Optional[Type], value: Optional[ast.AST]) -> None:
        if isinstance(target, ast.Name):
            if typed:
                self.names[target.id] = typed
            elif value is not None and self._many(value):
                self.iterables[target.id] = self._many(value)
        elif _is_self_attribute(target) and typed and self.owner:
            self.scope.attributes[(self.owner, target.attr)] = typed

    def _many(self, value: ast.AST) -> Optional[Type]:
        """The element type of a call returning ``List["trt.X"]``."""
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            return self.scope.list_returns.get(value.func.id)
        return None

    def visit_For(self, node: ast.For) -> None:
        element = self._many(node.iter)
        if isinstance(node.iter, ast.Name):
            element = self.iterables.get(node.iter.id)
        if element and isinstance(node.target, ast.Name):
            self.names[node.target.id] = element
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit_For(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        base = self.type_of(node.value)
        if base == ("module",):
            self.scope.uses.add((MODULE, node.attr))
        elif base is not None and base[0] in ("class", "instance"):
            self.scope.uses.add((base[1], node.attr))

    def type_of(self, node: Optional[ast.AST]) -> Optional[Type]:  # noqa: C901, PLR0912 (one branch per kind of expression)
        manifests = self.scope.manifests
        if isinstance(node, ast.Name):
            if node.id == self.scope.alias:
                return ("module",)
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            if _is_self_attribute(node) and self.owner:
                return self.scope.attributes.get((self.owner, node.attr))
            base = self.type_of(node.value)
            if base == ("module",):
                return ("class", node.attr) if node.attr in manifests.classes else None
            if base and base[0] == "class":
                if (base[1], node.attr) in manifests.nested:
                    return ("class", base[1])  # its members are listed on the outer class
                return ("instance", base[1])  # an enum member
            return None
        if isinstance(node, ast.BoolOp):  # ``runtime or create_runtime()``
            typed = [self.type_of(value) for value in node.values]
            return next((t for t in typed if t), None)
        if isinstance(node, ast.Call):
            function = node.func
            called = self.type_of(function)
            if called and called[0] == "class":
                return ("instance", called[1])
            if isinstance(function, ast.Attribute):
                base = self.type_of(function.value)
                if base and base[0] == "instance":
                    returned = manifests.returns.get((base[1], function.attr))
                    return ("instance", returned) if returned in manifests.classes else None
                if _is_self_attribute(function):
                    return self.scope.returns.get(function.attr)
            if isinstance(function, ast.Name):
                return self.scope.returns.get(function.id)
        return None


def _is_self_attribute(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


class _ModuleScope:
    """One module: its alias of ``tensorrt``, the project's functions' return types (by
    name, over every module read), the uses."""

    def __init__(
        self,
        tree: ast.Module,
        manifests: _Manifests,
        returns: Dict[str, Type],
        list_returns: Dict[str, Type],
    ) -> None:
        self.tree = tree
        self.manifests = manifests
        self.alias = _tensorrt_alias(tree)
        self.returns = returns
        self.list_returns = list_returns
        self.attributes = {}  # type: Dict[Tuple[str, str], Type]
        self.uses = set()  # type: Set[Use]

    def walk(self) -> Set[Use]:
        for _ in range(2):  # twice: self._x assigned in one method, read in an earlier one
            for node in self.tree.body:
                if isinstance(node, ast.FunctionDef):
                    _Function(self, None).run(node)
                elif isinstance(node, ast.ClassDef):
                    self.visit_class(node)
                else:
                    _Function(self, None).visit(node)
        return self.uses

    def visit_class(self, node: ast.ClassDef) -> None:
        for item in node.bases + node.body:
            if isinstance(item, ast.FunctionDef):
                _Function(self, node.name).run(item)
            else:
                _Function(self, node.name).visit(item)


def _collect_returns(trees: Iterable[ast.Module]) -> Tuple[Dict[str, Type], Dict[str, Type]]:
    """(function -> TensorRT class it returns, function -> class of its list's items)."""
    returns, list_returns = {}, {}  # type: Dict[str, Type], Dict[str, Type]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                found, many = _annotation(node.returns)
                if found:
                    (list_returns if many else returns)[node.name] = ("instance", found)
    return returns, list_returns


def _tensorrt_alias(tree: ast.Module) -> Optional[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == MODULE:
                    return alias.asname or MODULE
    return None


def tensorrt_uses(paths: Iterable[str], manifests: Iterable[Dict[str, Any]]) -> Set[Use]:
    """The TensorRT uses (public names) of the modules at ``paths`` that import it."""
    known = _Manifests(manifests)
    trees = []
    for path in paths:
        with open(path) as stream:
            trees.append(ast.parse(stream.read(), path))
    returns, list_returns = _collect_returns(trees)
    uses = set()  # type: Set[Use]
    for tree in trees:
        scope = _ModuleScope(tree, known, returns, list_returns)
        if scope.alias:
            uses |= scope.walk()
    return {(owner, member) for owner, member in uses if not member.startswith("_")}
