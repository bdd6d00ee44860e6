"""Plugin discovery through real distributions (dist-info on a PYTHONPATH entry), no mocks."""

from __future__ import annotations

import os
import site
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from waterflow_core.plugins import (
    ALLOWLIST_ENV,
    PluginError,
    PluginManager,
    add_pth_directories,
    allowlist_from_env,
    entry_points,
    plugin_path,
)
from waterflow_core.providers import EnvSecretProvider, LogHandler, SecretProvider
from waterflow_testing import write_node_package

Install = Callable[..., str]  # the `install` fixture of conftest.py

NODE_PLUGIN = '''
from pydantic import BaseModel
from waterflow_core import Node, NodeContext, hookimpl

class Hello(Node):
    type = "{type}"
    version = "{version}"
    class Inputs(BaseModel):
        name: str
    class Outputs(BaseModel):
        greeting: str
    async def run(self, ctx: NodeContext, inputs: Inputs) -> Outputs:
        ctx.log.info("greeting %s", inputs.name)
        return self.Outputs(greeting=f"{greeting} {{inputs.name}}")

@hookimpl
def waterflow_register_nodes():
    return [Hello]
'''


def node_source(node_type: str, version: str = "1.0.0", greeting: str = "hello") -> str:
    return NODE_PLUGIN.format(type=node_type, version=version, greeting=greeting)


def test_node_plugin_is_discovered_with_its_distribution(install: Install) -> None:
    module = install(node_source("test-plugins/hello"), dist="acme-hello", version="3.1")
    nodes = {cls.type: info for cls, info in PluginManager(allowlist=[module]).nodes()}
    info = nodes["test-plugins/hello"]
    assert (info.name, info.distribution, info.version, info.value) == (module, "acme-hello", "3.1", module)


def test_groups_load_lazily(install: Install) -> None:
    module = install(node_source("test-plugins/lazy"), groups=("waterflow.nodes",))
    install("", groups=("waterflow.cli",), name=module + "-cli")
    # Restricted to this test's plugins: other installed packages may be mid-change.
    manager = PluginManager(allowlist=[module, module + "-cli"])
    assert module not in sys.modules
    manager.commands()  # another group: must not import node packages
    assert module not in sys.modules
    manager.nodes()
    assert module in sys.modules


def test_allowlist_from_environment(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    install(node_source("test-plugins/allowed"), name="allowed-one")
    install(node_source("test-plugins/other"), name="other-one")

    def types(strict: bool = True) -> set[str]:
        manager = PluginManager(strict=strict)
        return {cls.type for cls, _ in manager.nodes() if cls.type.startswith("test-plugins/")}

    monkeypatch.delenv(ALLOWLIST_ENV, raising=False)
    # Unset = everything installed (lenient: other packages of the workspace may be mid-change).
    assert types(strict=False) == {"test-plugins/allowed", "test-plugins/other"}
    monkeypatch.setenv(ALLOWLIST_ENV, " allowed-one , shell")
    assert types() == {"test-plugins/allowed"}
    monkeypatch.setenv(ALLOWLIST_ENV, "")
    manager = PluginManager()
    assert manager.nodes() == []
    # Built-ins are part of core, not entry points: still there with an empty allowlist.
    assert manager.provider_classes(SecretProvider) == {"env": EnvSecretProvider}


def test_allowlist_parsing() -> None:
    assert allowlist_from_env({}) is None
    assert allowlist_from_env({ALLOWLIST_ENV: ""}) == frozenset()
    assert allowlist_from_env({ALLOWLIST_ENV: "a,,b ,"}) == {"a", "b"}


def test_cli_plugin_commands(install: Install) -> None:
    install(
        '''
        import click
        from waterflow_core import hookimpl

        @click.command("hello-cli")
        def hello():
            """Say hello."""

        @hookimpl
        def waterflow_register_commands():
            return [hello]
        ''',
        groups=("waterflow.cli",),
        name="hello-cli",
    )
    names = [cmd.name for cmd in PluginManager(allowlist=["hello-cli"]).commands()]
    assert names == ["hello-cli"]


def test_provider_plugin_adds_and_overrides(install: Install) -> None:
    install(
        '''
        from waterflow_core import hookimpl
        from waterflow_core.providers import LogHandler, SecretProvider

        class Vault(SecretProvider):
            name = "vault"
            class Options(SecretProvider.Options):
                url: str = "https://vault.invalid"
            async def get(self, name):
                return "from-vault"

        class Lines(LogHandler):
            name = "jsonl"  # replaces the built-in of the same name
            async def emit(self, record):
                pass

        @hookimpl
        def waterflow_register_secret_providers():
            return [Vault]

        @hookimpl
        def waterflow_register_log_handlers():
            return [Lines]
        ''',
        groups=("waterflow.providers",),
        name="vault",
    )
    manager = PluginManager(allowlist=["vault"])
    secrets = manager.provider_classes(SecretProvider)
    assert set(secrets) == {"env", "vault"}
    assert secrets["vault"]().options.url == "https://vault.invalid"
    assert manager.provider_classes(LogHandler)["jsonl"].__module__ != "waterflow_core.providers"


def test_broken_plugin_strict_raises_lenient_records(install: Install) -> None:
    install("raise RuntimeError('boom at import')\n", dist="broken-dist", name="broken")
    with pytest.raises(PluginError, match=r"broken.*broken-dist.*boom at import"):
        PluginManager(allowlist=["broken"]).nodes()
    lenient = PluginManager(allowlist=["broken"], strict=False)
    assert lenient.nodes() == []
    assert "boom at import" in lenient.errors[0]


def test_unknown_hook_name_is_an_error(install: Install) -> None:
    install(
        '''
        from waterflow_core import hookimpl

        @hookimpl
        def waterflow_register_node():  # typo: singular
            return []
        ''',
        name="typo",
    )
    with pytest.raises(PluginError, match=r"unknown hooks.*waterflow_register_node"):
        PluginManager(allowlist=["typo"]).nodes()


def test_hook_that_raises_names_the_plugin(install: Install) -> None:
    install(
        '''
        from waterflow_core import hookimpl

        @hookimpl
        def waterflow_register_nodes():
            raise ValueError("bad day")
        ''',
        dist="sad-plugin",
        name="sad",
    )
    with pytest.raises(PluginError, match=r"sad-plugin.*bad day"):
        PluginManager(allowlist=["sad"]).nodes()


def test_fresh_manager_sees_a_plugin_installed_later(install: Install) -> None:
    first = PluginManager(allowlist=["late"])
    assert not any(cls.type == "test-plugins/late" for cls, _ in first.nodes())
    install(node_source("test-plugins/late"), name="late")
    assert not any(cls.type == "test-plugins/late" for cls, _ in first.nodes())  # a snapshot
    assert any(cls.type == "test-plugins/late" for cls, _ in first.fresh().nodes())


def test_same_module_in_two_groups_is_loaded_once(install: Install) -> None:
    install(
        node_source("test-plugins/both")
        + "\n@hookimpl\ndef waterflow_register_commands():\n    return []\n",
        groups=("waterflow.nodes", "waterflow.cli"),
        name="both",
    )
    manager = PluginManager(allowlist=["both"])
    assert [cls.type for cls, _ in manager.nodes()] == ["test-plugins/both"]
    assert manager.commands() == []
    assert len(manager.plugins("waterflow.cli")) == 1


def test_plugins_in_the_working_directory_are_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python -m` puts the working directory first on sys.path; an agent's steps can write there.
    planted = tmp_path / "cwd"
    module = f"wf_test_planted_{uuid.uuid4().hex[:10]}"
    marker = tmp_path / "imported"
    write_node_package(planted, "planted", module, f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(planted)
    monkeypatch.syspath_prepend(str(planted))
    monkeypatch.setenv("PYTHONPATH", str(planted))  # not even when PYTHONPATH names it
    assert str(planted) not in plugin_path()
    assert [ep for ep in entry_points("waterflow.nodes") if ep.name == module] == []
    assert PluginManager(allowlist=[module]).nodes() == []
    assert not marker.exists()


def test_plugins_on_sys_path_only_are_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A directory someone appended to sys.path at run time is not part of the environment.
    elsewhere = tmp_path / "elsewhere"
    module = f"wf_test_elsewhere_{uuid.uuid4().hex[:10]}"
    write_node_package(elsewhere, "elsewhere", module, node_source("test-plugins/elsewhere"))
    monkeypatch.syspath_prepend(str(elsewhere))
    assert PluginManager(allowlist=[module]).nodes() == []
    monkeypatch.setenv("PYTHONPATH", str(elsewhere))
    assert [cls.type for cls, _ in PluginManager(allowlist=[module]).nodes()] == ["test-plugins/elsewhere"]
    sys.modules.pop(module, None)


def test_plugin_path_is_site_packages_and_pythonpath(install: Install) -> None:
    install(node_source("test-plugins/where"))
    path = plugin_path()
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] in path
    assert set(site.getsitepackages()) & set(path)
    assert "" not in path and os.getcwd() not in path


def test_new_pth_files_add_directories_but_never_run_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    site_dir = tmp_path / "site-packages"
    (site_dir / "src").mkdir(parents=True)
    marker = tmp_path / "executed"
    pth = site_dir / "evil.pth"
    pth.write_text(
        "# an editable install's path line, then code\n"
        "src\n"
        "missing-dir\n"
        f"import pathlib; pathlib.Path({str(marker)!r}).write_text('pwned')\n"
        f"import\tpathlib; pathlib.Path({str(marker)!r}).write_text('pwned')\n"
    )
    assert add_pth_directories(str(pth)) == [str(site_dir / "src")]
    assert not marker.exists()
    assert sys.path[-1] == str(site_dir / "src")
    assert add_pth_directories(str(pth)) == []  # already there: not added twice
