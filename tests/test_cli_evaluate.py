"""``rl-diffcat evaluate``: play a saved model, with clear errors for the wrong file, algo or env.

The models are trained for a few hundred steps: these tests check the plumbing, not learning.
"""

import json
import os
import sys

import pytest

from rl_diffcat.benchmark.algos import default_model_path
from rl_diffcat.cli import main

ENV = "CartPole-v1"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A PPO and a DiffCatSAC model saved by ``rl-diffcat train`` at their default paths (cwd = a temp dir)."""
    folder = tmp_path_factory.mktemp("evaluate")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        common = ["--steps", "300", "--device", "cpu", "--threads", "1", "--eval-freq", "300", "--eval-episodes", "1", "--no-progress"]
        assert main(["train", ENV, "--algo", "ppo", *common, "--tensorboard-log", "tb"]) == 0
        sac = ["--hyperparams", "learning_starts=100", "batch_size=32"]
        assert main(["train", ENV, "--algo", "diffcat-sac", "--seed", "2", *common, "--tensorboard-log", "tb", *sac]) == 0
    finally:
        os.chdir(cwd)
    return folder


def _evaluate(models, monkeypatch, argv):
    monkeypatch.chdir(models)
    return main(["evaluate", *argv])


def test_evaluate_finds_the_default_model_and_reports_every_episode(models, monkeypatch, capsys):
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "4", "--device", "cpu", "--json", "out/eval.json"]
    assert _evaluate(models, monkeypatch, argv) == 0
    out = capsys.readouterr().out
    model_path = default_model_path(ENV, "diffcat-sac", 2)
    assert f"diffcat-sac on {ENV} ({model_path}, trained 300 env steps" in out and "over 4 deterministic episodes" in out
    result = json.loads((models / "out" / "eval.json").read_text())
    assert result["trained_steps"] == 300 and result["deterministic"] and len(result["returns"]) == 4
    # CartPole pays 1 per step, so the Monitor's episode returns are the episode lengths.
    assert result["returns"] == [float(length) for length in result["lengths"]]
    assert result["mean_return"] == pytest.approx(sum(result["returns"]) / 4)
    assert f"return {result['mean_return']:.2f} +/- {result['std_return']:.2f}" in out


def test_evaluate_is_reproducible_for_an_eval_seed(models, monkeypatch):
    returns = []
    for _ in range(2):
        path = f"eval_{len(returns)}.json"
        argv = [ENV, "--algo", "ppo", "--episodes", "3", "--stochastic", "--eval-seed", "5", "--device", "cpu", "--json", path]
        assert _evaluate(models, monkeypatch, argv) == 0
        returns.append(json.loads((models / path).read_text())["returns"])
    assert returns[0] == returns[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([ENV, "--algo", "ppo", "--seed", "7"], "train one with `rl-diffcat train CartPole-v1 --algo ppo --seed 7`"),
        ([ENV, "--algo", "ppo", "--model", "nowhere.zip"], "no saved model at nowhere.zip"),
        (
            [ENV, "--algo", "diffcat-sac", "--model", default_model_path(ENV, "ppo", 0)],
            "does not load as a diffcat-sac model",
        ),
        (
            [ENV, "--algo", "discrete-sac", "--model", default_model_path(ENV, "diffcat-sac", 2)[:-4]],
            "its policy class comes from rl_diffcat.agents.diffcat_sac",
        ),
        (["Acrobot-v1", "--algo", "ppo", "--model", default_model_path(ENV, "ppo", 0)], "was not trained on Acrobot-v1"),
        ([ENV, "--algo", "ppo", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["CartPole-v9", "--algo", "ppo"], "Unknown env id 'CartPole-v9'"),
        ([], "which model? give ENV_ID and --algo"),
        (["--model", default_model_path(ENV, "ppo", 0)], "no done.json beside models/CartPole-v1_ppo_seed0.zip"),
        (["Pendulum-v1", "--algo", "diffcat-sac"], "diffcat-sac supports only Discrete/MultiDiscrete/MultiBinary"),
        ([ENV, "--algo", "diffcat-sac", "--sampler", "nope"], "valid samplers are"),
    ],
)
def test_evaluate_errors_are_clear(models, monkeypatch, capsys, argv, message):
    assert _evaluate(models, monkeypatch, argv) == 2
    assert message in capsys.readouterr().err


def test_a_model_trained_with_a_sampler_is_pointed_at(tmp_path, monkeypatch, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "CartPole-v1_diffcat-sac-gumbel_softmax_seed0.zip").write_bytes(b"")  # `train --sampler gumbel_softmax` names it so
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", ENV, "--algo", "diffcat-sac"]) == 2
    assert "(found models/CartPole-v1_diffcat-sac-gumbel_softmax_seed0.zip: pass the --sampler it was trained with" in capsys.readouterr().err


def test_a_compare_runs_model_needs_no_env_or_algo(models, monkeypatch, capsys):
    run = models / "results" / "runs" / "CartPole-v1__diffcat-sac__seed2"
    run.mkdir(parents=True)
    (run / "model.zip").write_bytes((models / default_model_path(ENV, "diffcat-sac", 2)).read_bytes())
    (run / "done.json").write_text(json.dumps({"env": ENV, "algo": "diffcat-sac", "seed": 2}))
    assert _evaluate(models, monkeypatch, ["--model", str(run / "model.zip"), "--episodes", "2", "--device", "cpu"]) == 0
    assert f"diffcat-sac on {ENV} ({run / 'model.zip'}, trained 300 env steps" in capsys.readouterr().out


def test_render_opens_a_window(models, monkeypatch, capsys):
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # no display needed
    # DiffCatSAC after 300 steps drops the pole within a few dozen steps: a short render.
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "1", "--render", "--device", "cpu"]
    assert _evaluate(models, monkeypatch, argv) == 0
    assert "over 1 deterministic episodes" in capsys.readouterr().out


def test_render_without_a_display_is_refused_before_anything_opens(models, monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "1", "--render", "--device", "cpu"]
    assert _evaluate(models, monkeypatch, argv) == 2
    assert "there is no display" in capsys.readouterr().err


def test_render_without_its_dependency_says_what_is_missing(models, monkeypatch, capsys):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setitem(sys.modules, "pygame", None)  # `import pygame` now fails, as when it is not installed
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "1", "--render", "--device", "cpu"]
    assert _evaluate(models, monkeypatch, argv) == 2
    assert "needs an optional dependency" in capsys.readouterr().err


def _frames(path):
    """Frames in an MP4 file, decoded (moviepy's imageio-ffmpeg)."""
    imageio = pytest.importorskip("imageio.v2")
    with imageio.get_reader(path, "ffmpeg") as reader:
        return sum(1 for _ in reader)


def test_video_writes_each_episode_played_and_changes_no_return(models, monkeypatch, capsys):
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    for name in ("MUJOCO_GL", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    common = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "3", "--stochastic", "--eval-seed", "4", "--device", "cpu"]
    assert _evaluate(models, monkeypatch, [*common, "--video", "videos", "--json", "video.json"]) == 0
    assert "wrote 3 videos to videos" in capsys.readouterr().out
    assert _evaluate(models, monkeypatch, [*common, "--json", "plain.json"]) == 0
    recorded, plain = (json.loads((models / name).read_text()) for name in ("video.json", "plain.json"))
    assert recorded["returns"] == plain["returns"], "recording must not change what is played"
    expected = [os.path.join("videos", f"{ENV}_diffcat-sac_seed2-episode-{i}.mp4") for i in range(3)]  # the model's name
    assert recorded["videos"] == expected and sorted(os.listdir(models / "videos")) == sorted(map(os.path.basename, expected))
    for video, length in zip(expected, recorded["lengths"]):
        # the reset frame and one per step (the decoder may drop one at the end of a short clip)
        assert abs(_frames(str(models / video)) - (length + 1)) <= 1, video
    assert "MUJOCO_GL" not in os.environ and "SDL_VIDEODRIVER" not in os.environ, "the off-screen settings are undone"


def test_video_is_refused_with_render_and_on_an_env_without_frames(models, monkeypatch, capsys):
    pytest.importorskip("moviepy")
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "1", "--device", "cpu", "--video", "videos", "--render"]
    assert _evaluate(models, monkeypatch, argv) == 2
    assert "pass one of them" in capsys.readouterr().err

    import gymnasium as gym
    from gymnasium.envs.classic_control import CartPoleEnv

    class Blind(CartPoleEnv):
        metadata = {"render_modes": [], "render_fps": 50}

    class NoRenderModeArgument(Blind):  # a render_mode keyword would be a TypeError
        def __init__(self):
            super().__init__()

    for name, entry_point in (("BlindCartPole-v0", Blind), ("NoRenderModeCartPole-v0", NoRenderModeArgument)):
        gym.register(name, entry_point=entry_point, max_episode_steps=500)
        try:
            argv = [name, "--algo", "diffcat-sac", "--model", default_model_path(ENV, "diffcat-sac", 2),
                    "--episodes", "1", "--device", "cpu", "--video", "refused"]  # fmt: skip
            assert _evaluate(models, monkeypatch, argv) == 2
            assert f"{name} has no rgb_array render mode" in capsys.readouterr().err
            assert not (models / "refused").exists(), "a refused run leaves no empty folder"
        finally:
            gym.registry.pop(name)

    (models / "a_file").write_text("")
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "1", "--device", "cpu", "--video", "a_file"]
    assert _evaluate(models, monkeypatch, argv) == 2
    assert "a file of that name exists" in capsys.readouterr().err


def test_a_refused_run_removes_only_a_video_folder_it_made_and_left_empty(models, monkeypatch, capsys):
    pytest.importorskip("moviepy")
    wrong_env = ["Acrobot-v1", "--algo", "diffcat-sac", "--model", default_model_path(ENV, "diffcat-sac", 2), "--episodes", "1",
                 "--device", "cpu", "--video"]  # fmt: skip
    assert _evaluate(models, monkeypatch, [*wrong_env, "new_folder"]) == 2
    assert "was not trained on Acrobot-v1" in capsys.readouterr().err
    assert not (models / "new_folder").exists()
    (models / "kept").mkdir()
    assert _evaluate(models, monkeypatch, [*wrong_env, "kept"]) == 2
    assert (models / "kept").is_dir(), "a folder the user made stays"


def test_videos_are_named_after_the_model_file():
    from rl_diffcat.benchmark.rendering import video_name_prefix

    assert video_name_prefix(os.path.join("models", "CartPole-v1_ppo_seed1.zip")) == "CartPole-v1_ppo_seed1"
    run = os.path.join("results", "quick", "runs", "CartPole-v1__ppo__seed0", "model.zip")
    assert video_name_prefix(run) == "CartPole-v1__ppo__seed0", "a compare run's model.zip: its run folder"


def test_video_without_moviepy_names_the_extra(models, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "moviepy", None)  # `import moviepy` now fails, as when it is not installed
    argv = [ENV, "--algo", "diffcat-sac", "--seed", "2", "--episodes", "1", "--device", "cpu", "--video", "unwritten"]
    assert _evaluate(models, monkeypatch, argv) == 2
    assert "pip install 'rl-diffcat[video]'" in capsys.readouterr().err
    assert not (models / "unwritten").exists(), "nothing is played or written"


def _cheetah_pixels(frame):
    """Pixels of the cheetah's orange-brown body; the floor is black and pale green."""
    red, green, blue = (frame[..., channel].astype(int) for channel in range(3))
    return int(((red > green + 20) & (red > blue + 40)).sum())


def test_video_of_a_mujoco_runner_follows_it_with_the_tracking_camera():
    pytest.importorskip("mujoco")
    import gymnasium as gym

    import rl_diffcat.envs  # noqa: F401
    from rl_diffcat.benchmark.rendering import offscreen_rendering, video_make_kwargs

    assert video_make_kwargs(ENV) == {"render_mode": "rgb_array"}, "only MuJoCo models with a tracking camera get one"
    env_id = "rl_diffcat/HalfCheetah-Discrete-v0"
    make_kwargs = video_make_kwargs(env_id)
    assert make_kwargs == {"render_mode": "rgb_array", "camera_name": "track"}
    seen, pyopengl_platform = {}, os.environ.get("PYOPENGL_PLATFORM")
    with offscreen_rendering(True):
        for camera, kwargs in (("free", {"render_mode": "rgb_array"}), ("track", make_kwargs)):
            env = gym.make(env_id, **kwargs)
            env.reset(seed=0)
            at_start = _cheetah_pixels(env.render())
            qpos, qvel = env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()
            qpos[0] += 30.0  # 30 m down the track, as after a few seconds of a good run
            env.unwrapped.set_state(qpos, qvel)
            seen[camera] = (at_start, _cheetah_pixels(env.render()))
            env.close()
    assert seen["free"][0] > 1000 and seen["free"][1] == 0, f"the free camera stays behind: {seen}"
    assert os.environ.get("PYOPENGL_PLATFORM") == pyopengl_platform, "what MuJoCo's EGL backend sets is undone too"
    assert min(seen["track"]) > 1000, f"the tracking camera keeps the cheetah in the picture: {seen}"
