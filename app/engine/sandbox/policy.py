"""The compile-time policy: RestrictedPython's rules plus ours, and the rewrites that route
operators, f-strings and except/finally blocks through the guards."""

from __future__ import annotations

import ast
from functools import lru_cache

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython import transformer as rp

from .namespace import _BLOCKED

FILENAME = "<string>"  # SpiffWorkflow looks for this name to report script line numbers
_GUARDED_INPLACE = {"+=": "_iadd_", "*=": "_imul_", "**=": "_pow_", "<<=": "_lshift_",
                    "%=": "_mod_"}


class _Policy(rp.RestrictingNodeTransformer):
    """RestrictedPython's policy plus our own rules and guard rewrites."""

    _BINOPS = {ast.Add: "_add_", ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_",
               ast.Mod: "_mod_"}

    def _call(self, name: str, args: list, node: ast.AST) -> ast.Call:
        call = ast.Call(ast.Name(name, ast.Load()), args, [])
        rp.copy_locations(call, node)
        return call

    _refuse = rp.RestrictingNodeTransformer.not_allowed  # "<node> statements are not allowed."
    visit_Import = visit_ImportFrom = visit_ClassDef = visit_With = _refuse

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in _BLOCKED:
            self.error(node, f'Calling "{node.func.id}" is not allowed.')
        return super().visit_Call(node)

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        name = self._BINOPS.get(type(node.op))
        return self._call(name, [node.left, node.right], node) if name else node

    def visit_AugAssign(self, node):
        target, op = node.target, rp.IOPERATOR_TO_STR[type(node.op)]
        if isinstance(target, ast.Subscript):
            args = [self.visit(target.value), self.visit(target.slice), ast.Constant(op)]
            new = ast.Expr(self._call("_augitem_", [*args, self.visit(node.value)], node))
        elif isinstance(target, ast.Name) and op in _GUARDED_INPLACE:
            self.check_name(target, target.id)
            args = [ast.Name(target.id, ast.Load()), self.visit(node.value)]
            call = self._call(_GUARDED_INPLACE[op], args, node)
            new = ast.Assign([ast.Name(target.id, ast.Store())], call)
        elif isinstance(target, ast.Name):
            return self.node_contents_visit(node)  # a plain name: no guard needed
        else:
            return super().visit_AugAssign(node)  # attributes: refused by RestrictedPython
        rp.copy_locations(new, node)
        return new

    def visit_While(self, node):
        """Start each iteration with a real instruction: `while 1: pass` has no line events."""
        node = self.node_contents_visit(node)
        marker = ast.Expr(ast.Name("_loop_", ast.Load()))
        rp.copy_locations(marker, node.body[0])
        node.body.insert(0, marker)
        return node

    def visit_Try(self, node):
        node = self.node_contents_visit(node)
        for body in [h.body for h in node.handlers] + [node.finalbody]:
            if body:
                guard = ast.Expr(self._call("_reraise_", [], body[0]))
                rp.copy_locations(guard, body[0])
                body.insert(0, guard)
        return node

    def visit_FormattedValue(self, node):
        """`{value!r:spec}` -> `_format_value_(value, spec, conversion)` (a str)."""
        node = self.node_contents_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        return self._call("_format_value_", [node.value, spec, ast.Constant(node.conversion)],
                          node)

    def visit_JoinedStr(self, node):
        """`f'a{b}'` -> `_fstring_(('a', _format_value_(b, '', -1)))`: the length is checked
        before the parts are joined."""
        node = self.node_contents_visit(node)
        parts = ast.Tuple(list(node.values), ast.Load())
        rp.copy_locations(parts, node)
        return self._call("_fstring_", [parts], node)


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str):
    """(code, policy errors) of an "exec" or "eval" source; raises SyntaxError."""
    compiler = {"eval": compile_restricted_eval, "exec": compile_restricted_exec}[mode]
    tree = ast.parse(source.strip() if mode == "eval" else source, FILENAME, mode)
    result = compiler(tree, FILENAME, policy=_Policy)
    return result.code, tuple(result.errors)


def check_source(source: str, mode: str) -> list[str]:
    """Compile errors of a script ("exec") or expression ("eval"); empty when acceptable."""
    try:
        return list(_compile(source, mode)[1])
    except SyntaxError as exc:
        return [f"Line {exc.lineno}: SyntaxError: {exc.msg}"]
