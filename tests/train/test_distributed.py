"""Tests for embedforge.train.distributed.

The DDP checks launch 2 gloo processes with torchrun (once for all cases) and
compare their parameter gradients with the single-process gradient of the same
global batch, and the weights the trainer's own ``train()`` and ``fit()`` (a
user's model and DataLoaders) reach on 2 ranks with those of one process.
Tolerances: 1e-10 in float64, 1e-5 in float32 (the runs differ only by the
order of floating-point sums).
"""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.distributed as dist
import yaml

from embedforge.errors import UserError
from embedforge.files.run_folder import BEST, LAST, read_history
from embedforge.files.state import load_state
from embedforge.losses.ntxent import NTXentLoss
from embedforge.losses.supcon import SupConLoss
from embedforge.recipe import parse_recipe
from embedforge.train import distributed
from embedforge.train.trainer import train

WORKER = Path(__file__).with_name("distributed_worker.py")
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this build",
)


def _load_worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ddp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the 2-process worker once; returns the folder it wrote (results and run folders)."""
    out_dir = tmp_path_factory.mktemp("ddp")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # rendezvous on localhost, free port picked by the OS
        "--nproc_per_node=2",
        str(WORKER),
        str(out_dir),
    ]
    # the worker imports the user's model from tests.train.test_fit: the repo root on its path
    path = os.pathsep.join(filter(None, [str(WORKER.parents[2]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout}\n{done.stderr}"
    return out_dir


@pytest.fixture(scope="module")
def ddp_results(ddp_dir: Path) -> dict[str, torch.Tensor]:
    """The tensors rank 0 wrote."""
    from safetensors.torch import load_file

    return load_file(str(ddp_dir / "ddp.safetensors"))


@needs_gloo
@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
@pytest.mark.parametrize(
    "case_name",
    [
        "ntxent_two_view",
        "supcon",
        "supcon_uneven",
        "triplet_all",
        "triplet_batch_hard",
        "contrastive",
        "ntxent_projected",
        "supcon_projected",
        "supcon_memory",
        "triplet_memory",
    ],
)
def test_ddp_gradient_equals_single_process_gradient(
    ddp_results: dict[str, torch.Tensor], case_name: str, dtype_name: str
) -> None:
    worker = _load_worker()
    case, dtype = worker.CASES[case_name], worker.DTYPES[dtype_name]
    x1, x2, labels = worker.make_inputs(dtype)
    model = worker.make_model(dtype)
    loss_fn = case.make_loss().to(dtype)
    if case.two_view:
        z1, z2 = model(torch.cat([x1, x2])).split(x1.shape[0])
        loss = loss_fn(z1, z2)
    else:
        loss = loss_fn(model(x1), labels)
    loss.backward()

    key, tol = f"{case_name}.{dtype_name}", TOLERANCE[dtype_name]
    assert model.weight.grad.abs().sum() > 0  # a zero gradient would make the test vacuous
    options = {"rtol": tol, "atol": tol}
    torch.testing.assert_close(ddp_results[f"{key}.weight_grad"], model.weight.grad, **options)
    torch.testing.assert_close(ddp_results[f"{key}.bias_grad"], model.bias.grad, **options)
    per_rank = ddp_results[f"{key}.loss_per_rank"]  # every rank computes the global loss
    torch.testing.assert_close(per_rank, loss.detach().expand(2), **options)
    # the loss's own parameters (a projection head) get the global gradient on every rank
    loss_grads = worker.parameter_grads(loss_fn).to(dtype)
    torch.testing.assert_close(
        ddp_results[f"{key}.loss_grad_per_rank"], loss_grads.expand(2, -1), **options
    )
    # a cross-batch memory enqueues the gathered batch: the same memory on every rank
    torch.testing.assert_close(
        ddp_results[f"{key}.loss_buffers_per_rank"], worker.buffers(loss_fn).expand(2, -1)
    )


@needs_gloo
def test_ddp_vae_task_gradient_equals_single_process_gradient(
    ddp_results: dict[str, torch.Tensor],
) -> None:
    """ImageTask's VAE branch gathers: the decoder (a loss parameter, outside DDP) gets the
    single-process gradient on every rank, and so does the model after DDP's averaging."""
    worker = _load_worker()
    task = worker.make_vae_task()
    loss = worker.vae_step(task)
    model_grads = worker.parameter_grads(task.model)
    loss_grads = worker.parameter_grads(task.loss_fn)
    assert model_grads.abs().sum() > 0 and loss_grads.abs().sum() > 0
    options = {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(ddp_results["vae.loss_per_rank"], loss.expand(2), **options)
    torch.testing.assert_close(ddp_results["vae.model_grad"], model_grads, **options)
    torch.testing.assert_close(
        ddp_results["vae.loss_grad_per_rank"], loss_grads.expand(2, -1), **options
    )


@needs_gloo
@pytest.mark.parametrize(
    "name",
    [
        "images",
        "images_memory",
        "palettes",
        "palettes_emd",
        *(f"palettes_{m}" for m in _load_worker().METHOD_SETTINGS),
    ],
)
def test_ddp_training_reaches_the_single_process_weights(
    ddp_dir: Path, tmp_path: Path, name: str
) -> None:
    """``train()`` on 2 ranks and on one process: the same losses every epoch, and the same
    best and last weights (the views each item gets must agree for that; the image model runs
    without batch norm, see the worker's ``trainer_patches``)."""
    worker = _load_worker()
    with worker.trainer_patches():
        train(parse_recipe(worker.TRAINER_RECIPES[name]), tmp_path, progress=False)
    _assert_same_run(ddp_dir / name, tmp_path)


@needs_gloo
@pytest.mark.parametrize("name", _load_worker().FIT_CASES)
def test_ddp_fit_reaches_the_single_process_weights(
    ddp_dir: Path, tmp_path: Path, name: str
) -> None:
    """``fit()`` on a user's model and DataLoaders, 2 ranks each given its share by a
    ``DistributedSampler``, and on one process with the whole batches: the same run."""
    _load_worker().run_fit(name, tmp_path, ranks=1, rank=0)
    _assert_same_run(ddp_dir / f"fit_{name}", tmp_path)


@needs_gloo
def test_ddp_fit_with_a_rank_on_other_data_is_told_apart(ddp_dir: Path, tmp_path: Path) -> None:
    """The comparison above can fail: rank 1 shuffling its share with another seed (so it
    trains on items of rank 0's share, and misses some of its own) ends far from the one
    process's weights."""
    _load_worker().run_fit("supcon", tmp_path, ranks=1, rank=0)
    got = load_state(ddp_dir / "fit_rank_1_reshuffled" / LAST)["model"]
    want = load_state(tmp_path / LAST)["model"]
    apart = max((got[key] - want[key]).abs().max().item() for key in want)
    assert apart > 100 * TOLERANCE["float32"]


def _assert_same_run(got_dir: Path, want_dir: Path) -> None:
    """The run folders ``got_dir`` (2 ranks) and ``want_dir`` (one process) hold the same
    losses every epoch and the same best and last epochs and weights, to float32's tolerance."""
    options = {"rtol": TOLERANCE["float32"], "atol": TOLERANCE["float32"]}
    got_losses = [row["loss"] for row in read_history(got_dir)]
    torch.testing.assert_close(
        got_losses, [row["loss"] for row in read_history(want_dir)], **options
    )
    for checkpoint in (BEST, LAST):
        got, want = load_state(got_dir / checkpoint), load_state(want_dir / checkpoint)
        assert got["epoch"] == want["epoch"]
        torch.testing.assert_close(got["model"], want["model"], **options)
        # a method's heads, target network, queue, centre and step counter too; its heads see
        # the gathered embeddings, whose rounding differs from one process's by ~1e-7, and
        # Barlow Twins' sum over D^2 correlations amplifies that to ~1e-5 in a few weights
        torch.testing.assert_close(got["loss"], want["loss"], rtol=1e-4, atol=1e-4)


@needs_gloo
def test_ddp_ranks_stop_at_rank_0s_early_stop(ddp_results: dict[str, torch.Tensor]) -> None:
    """Ranks whose validation disagrees still stop together, at the epoch rank 0's numbers give.

    Without the broadcast rank 0 stops after epoch 1 while rank 1 trains on, and rank 1's next
    gradient all-reduce meets whatever collective rank 0 runs next: gloo aborts the worker
    ("collective mismatch"), which fails every test of this module."""
    assert ddp_results["disagreeing.epochs_run_per_rank"].tolist() == [2, 2]
    assert ddp_results["disagreeing.best_epoch_per_rank"].tolist() == [0, 0]


@needs_gloo
def test_ddp_second_derivative_through_the_gather_is_refused(
    ddp_results: dict[str, torch.Tensor],
) -> None:
    """Its backward's all-reduce is not differentiated, so a second order term would be wrong."""
    assert ddp_results["second_derivative_refused"].tolist() == [True, True]


def test_not_distributed_rank_info() -> None:
    assert not distributed.is_distributed()
    assert distributed.rank() == 0
    assert distributed.world_size() == 1
    assert distributed.is_main_process()
    distributed.cleanup()  # a no-op when nothing is initialised


def test_gathers_pass_through_when_not_distributed() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    y = torch.tensor([0, 1, 0])
    assert distributed.gather_with_grad(x) is x
    assert distributed.gather_labels(y) is y


@pytest.mark.parametrize("two_view", [False, True])
def test_global_batch_loss_is_the_loss_on_one_process(two_view: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=gen, requires_grad=True)
    if two_view:
        other, loss_fn = torch.randn(6, 3, generator=gen), NTXentLoss(temperature=0.5)
    else:
        other, loss_fn = torch.tensor([0, 0, 1, 1, 2, 2]), SupConLoss(temperature=0.5)
    got = distributed.global_batch_loss(loss_fn, x, other)
    (grad_got,) = torch.autograd.grad(got, x)
    want = loss_fn(x, other)
    (grad_want,) = torch.autograd.grad(want, x)
    assert got.item() == want.item()
    assert torch.equal(grad_got, grad_want)


def test_setup_from_env_without_torchrun_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.setup_from_env("gloo") is False
    assert not distributed.is_distributed()


@needs_gloo
def test_setup_from_env_single_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1-process gloo group: set up from env, gathers pass through, then cleaned up."""
    import socket

    with socket.socket() as sock:  # a free port
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost"}
    for name, value in {**env, "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    try:
        assert distributed.setup_from_env(backend="gloo") is True
        assert distributed.is_distributed() and distributed.world_size() == 1
        assert distributed.setup_from_env(backend="gloo") is True  # idempotent
        x = torch.randn(2, 3)
        assert distributed.gather_with_grad(x) is x
    finally:
        distributed.cleanup()
    assert not distributed.is_distributed()


def test_nccl_refuses_a_local_rank_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """More processes per node than GPUs: a clear error, not a CUDA traceback."""
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match=r"local process 1 but this machine has 1 GPU"):
        distributed.setup_from_env(backend="nccl")
    assert not distributed.is_distributed()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_gloo
def test_two_torchrun_agents_train_like_one_node_of_two_processes(
    ddp_dir: Path, tmp_path: Path
) -> None:
    """Multi-node as a cluster runs it: two torchrun agents ("nodes", one process each) meet
    at a c10d rendezvous and train the palette recipe through the command line; the run is the
    one the worker's single torchrun with two processes wrote (losses, best and last weights)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_load_worker().TRAINER_RECIPES["palettes"]))
    endpoint = f"127.0.0.1:{_free_port()}"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        "--rdzv-id=two-agents",
        "-m",
        "embedforge",
        "train",
        str(recipe),
        "--out",
        str(tmp_path / "run"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    agents = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for _ in range(2)
    ]
    outputs = [agent.communicate(timeout=180)[0].decode() for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(outputs)
    said = [line for output in outputs for line in output.splitlines() if "trained" in line]
    assert len(said) == 1 and "on 2 processes" in said[0]  # one world of two, rank 0 says
    _assert_same_run(tmp_path / "run", ddp_dir / "palettes")
