"""The bot package's boundaries: the SDK is loaded in one place, and the prompt hands it the history as sent."""

from __future__ import annotations

import ast
from pathlib import Path

from support.bot import prompt

ROOT = Path(__file__).resolve().parent.parent.parent
SDK_CLIENT = Path("support/bot/claude.py")


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Top-level modules imported when the file runs (an `if TYPE_CHECKING:` block is not run)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_claude_client_loads_the_anthropic_sdk() -> None:
    loaders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "support").rglob("*.py"))
        if "migrations" not in path.parts and "anthropic" in _runtime_imports(ast.parse(path.read_text()))
    ]
    assert loaders == [str(SDK_CLIENT)]


def test_the_history_reaches_the_sdk_with_its_roles_and_text_unchanged() -> None:
    history = [
        {"role": "user", "content": "Do you take deposits?"},
        {"role": "assistant", "content": "Yes, on every paid plan."},
        {"role": "user", "content": "How much?"},
    ]
    assert prompt.message_params(history) == history


def test_the_system_prompt_is_one_block_marked_for_the_prompt_cache() -> None:
    assert prompt.system_blocks("Be brief.") == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    ]
