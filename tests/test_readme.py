from tests.readme import README, marked_blocks


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = marked_blocks("test-command")[""].strip()
    ci_script = (README.parent / ".ci" / "run").read_text().splitlines()
    assert command in ci_script


def test_readme_install_command_runs_the_server() -> None:
    assert "pip install -e . && python -m core serve" in README.read_text()


def test_readme_plugin_example_is_complete() -> None:
    files = marked_blocks("file")
    assert set(files) == {"pyproject.toml", "hello_plugin/__init__.py"}
    assert 'hello = "hello_plugin"' in files["pyproject.toml"]
    compile(files["hello_plugin/__init__.py"], "hello_plugin/__init__.py", "exec")
