"""The router outside Rasa: read out of the latest model archive, and split for evaluation.

``citizenbot classify`` and ``citizenbot eval routing`` (:mod:`bot.model.commands`)
and the benchmarks use it without loading Rasa or TensorFlow.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Any

_ROUTER_FILES = ("router.json", "router.npz")


# -- locating a model -----------------------------------------------------------------------


def latest_archive(model_dir: Path) -> Path:
    archives = sorted(model_dir.glob("*.tar.gz"), key=lambda p: (p.stat().st_mtime, p.name))
    if not archives:
        raise FileNotFoundError(f"no trained model (*.tar.gz) in {model_dir}; run `rasa train`")
    return archives[-1]


def extract_router(archive: Path, target: Path) -> Path:
    """Copy the DepartmentRouter's resource out of a Rasa model archive.

    Rasa's archive keeps each component's resource under ``components/<node>/``;
    the router's files sit in its ``router/`` subdirectory. Only those two
    members are read, so neither TensorFlow nor Rasa is imported.
    """
    from nlu.routing import RESOURCE_DIR

    found: dict[str, tarfile.TarInfo] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if (
                member.isfile()
                and len(parts) >= 3
                and parts[-2] == RESOURCE_DIR
                and parts[-1] in _ROUTER_FILES
                and "DepartmentRouter" in "/".join(parts[:-2])
            ):
                found[parts[-1]] = member
                if len(found) == len(_ROUTER_FILES):
                    target.mkdir(parents=True, exist_ok=True)
                    for name, info in found.items():
                        source = tar.extractfile(info)
                        assert source is not None
                        (target / name).write_bytes(source.read())
                    return target
    raise FileNotFoundError(
        f"{archive} holds no DepartmentRouter resource; is "
        "nlu.components.department_router.DepartmentRouter in config.yml's pipeline?"
    )


def router_module() -> Any:
    # Imported lazily: `citizenbot --help` must not pay for scikit-learn and jieba.
    from nlu import routing

    return routing


def load_router(model: Path | None, model_dir: Path | None) -> Any:
    routing = router_module()
    if model is not None:
        if model.is_dir():
            return routing.Router.load(model)
        if model.name.endswith(".tar.gz"):
            with tempfile.TemporaryDirectory() as tmp:
                return routing.Router.load(extract_router(model, Path(tmp)))
        raise FileNotFoundError(f"{model}: neither a Router directory nor a .tar.gz model")
    if model_dir is None:
        from bot.settings import get_settings

        model_dir = get_settings().model_dir
    with tempfile.TemporaryDirectory() as tmp:
        return routing.Router.load(extract_router(latest_archive(model_dir), Path(tmp)))


def split_rows(
    rows: list[dict[str, Any]], test_size: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded stratified split (the same seed gives the same split on every machine)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        rows, test_size=test_size, random_state=seed, stratify=[r["label"] for r in rows]
    )
    return list(train), list(test)
