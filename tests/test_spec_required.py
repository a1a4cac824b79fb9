"""A data set's spec is always passed on (read from the dump records by ``Corpus.spec``), never assumed."""

import importlib
import inspect
import json
import shutil

import pytest

from asd_tools.artefacts import record_name
from asd_tools.data.corpus import Corpus
from asd_tools.data.dump import dump_pool
from asd_tools.data.synthetic import generate_outlier_pool

# every module whose functions take the data set's spec
MODULES = (
    "asd_tools.data.names",
    "asd_tools.data.dump",
    "asd_tools.data.ground_truth",
    "asd_tools.scoring.report",
    "asd_tools.ensembles.average",
    "asd_tools.ensembles.domain_weight",
)


def _functions_taking_spec():
    for name in MODULES:
        module = importlib.import_module(name)
        for function_name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == name and "spec" in inspect.signature(function).parameters:
                yield f"{name}.{function_name}", inspect.signature(function).parameters["spec"]


def test_no_function_falls_back_to_a_default_data_set():
    taking = dict(_functions_taking_spec())
    assert len(taking) >= 15, sorted(taking)  # the functions this test is about are still found
    with_default = sorted(
        name for name, parameter in taking.items() if parameter.default is not inspect.Parameter.empty
    )
    assert with_default == []


def test_a_dumpdir_with_no_dumped_data_set_is_an_error_not_dcase2022(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path} holds no dumped data set: run the dump stage"):
        assert Corpus(tmp_path).spec is None  # never reached: the spec is an error
    generate_outlier_pool(tmp_path / "pool", count=2, seconds=2.0)
    dump_pool(tmp_path / "pool", tmp_path)  # an outlier pool is of no data set
    with pytest.raises(FileNotFoundError, match="holds no dumped data set"):
        assert Corpus(tmp_path).spec is None  # never reached: the spec is an error


def test_an_outlier_pool_beside_a_dump_does_not_count_as_a_data_set(tiny_dump, tmp_path):
    dumpdir = tmp_path / "dump"
    shutil.copytree(tiny_dump / "fan", dumpdir / "fan")  # the session's dump is never written into
    record_path = dumpdir / "fan" / record_name("dump")
    record = json.loads(record_path.read_text())
    record["settings"]["layout"] = "dcase2023"  # a data set other than the old silent default (its spec is all we read)
    record_path.write_text(json.dumps(record))
    generate_outlier_pool(tmp_path / "pool", count=2, seconds=2.0)
    dump_pool(tmp_path / "pool", dumpdir)
    assert Corpus(dumpdir).spec.name == "dcase2023"  # not "mixes data sets (fan: dcase2023, outlier_pool: dcase2022)"
