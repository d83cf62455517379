"""Heart rate from wrist PPG + 3-axis accelerometer with a 1-d CNN (fastbp.nn), compared with the
classical spectral-peak estimate on the same windows.

Windows are 8 s at 32 Hz (4 x 256, the shape of the benchmark layer ppg-c1), shifted by 2 s, as in
the PPG-DaLiA benchmark. Training and test subjects are disjoint (leave-subjects-out). The trained
CNN is then also scored on a real recording, PPG-DaLiA subject S6 on stairs (from the KID-PPG
authors' wheel, see kid_ppg.py): the simulation does not transfer to it.

    python examples/ppg_heart_rate.py [--epochs 12] [--seed 0] [--quick] [--wheel PATH]
"""
import argparse
import time

import numpy as np

import fastbp
import fastbp.nn.functional as F
from fastbp import nn

FS = 32           # Hz
WINDOW = 8 * FS   # samples per window
STEP = 2 * FS     # window shift

# activity: (HR above resting, step cadence range in Hz, arm-motion amplitude range in g)
ACTIVITIES = {
    "rest": (0, None, (0.0, 0.03)),
    "walk": (30, (1.6, 2.0), (0.3, 0.6)),
    "stairs": (50, (1.4, 1.8), (0.4, 0.8)),
    "run": (80, (2.4, 2.9), (0.9, 1.5)),
    "hand": (15, (1.0, 3.0), (0.2, 0.5)),  # irregular hand work, e.g. table soccer or typing
}


def _smooth(x, seconds):
    """Causal first-order low-pass (a physiological lag) along the last axis, by FFT convolution
    with a truncated exponential; the signal is extended backwards with its first value."""
    tau = seconds * FS
    kernel = np.exp(-np.arange(int(8 * tau) + 1) / tau)
    kernel /= kernel.sum()
    k = len(kernel)
    padded = np.concatenate([np.repeat(x[..., :1], k - 1, axis=-1), x], axis=-1)
    n = padded.shape[-1] + k - 1
    out = np.fft.irfft(np.fft.rfft(padded, n) * np.fft.rfft(kernel, n), n)
    return out[..., k - 1:k - 1 + x.shape[-1]]


def _band_noise(rng, n, low, high):
    """Gaussian noise band-limited to [low, high] Hz, unit variance."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / FS)
    spec[(f < low) | (f > high)] = 0
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def simulate_subject(rng, minutes):
    """One recording: (4, T) signals [ppg, acc_x, acc_y, acc_z] and (T,) heart rate in bpm."""
    n = int(minutes * 60 * FS)
    t = np.arange(n) / FS
    rest_hr = rng.uniform(55, 80)

    # activity schedule: segments of 40-120 s
    hr_target, cadence, motion = np.empty(n), np.zeros(n), np.zeros(n)
    irregular = np.zeros(n, bool)
    start = 0
    while start < n:
        name = rng.choice(list(ACTIVITIES), p=[0.3, 0.25, 0.1, 0.2, 0.15])
        extra, cad, amp = ACTIVITIES[name]
        stop = min(n, start + int(rng.uniform(40, 120) * FS))
        hr_target[start:stop] = rest_hr + extra * rng.uniform(0.7, 1.3)
        if cad is not None:
            cadence[start:stop] = rng.uniform(*cad)
        motion[start:stop] = rng.uniform(*amp)
        irregular[start:stop] = name == "hand"
        start = stop

    # heart rate: lagged response to the activity plus a slow random walk and breathing (RSA)
    hr = _smooth(hr_target, rng.uniform(15, 35))
    hr += 4 * _band_noise(rng, n, 0.002, 0.02)
    breath = 2 * np.pi * np.cumsum(rng.uniform(0.2, 0.33) + 0.03 * _band_noise(rng, n, 0, 0.05)) / FS
    hr += 1.5 * np.sin(breath)
    hr = np.clip(hr, 45, 190)

    # PPG pulse: systolic peak plus a dicrotic wave, one beat per cycle of the heart-rate phase
    phase = np.cumsum(hr / 60.0) / FS
    shape_jitter = rng.uniform(0.9, 1.1)
    cyc = phase % 1.0

    def bump(center, width):
        d = (cyc - center + 0.5) % 1.0 - 0.5
        return np.exp(-0.5 * (d / width) ** 2)

    pulse = bump(0.2, 0.07 * shape_jitter) + rng.uniform(0.25, 0.45) * bump(0.5, 0.1)
    pulse *= 1 + 0.15 * np.sin(breath)  # respiratory amplitude modulation
    pulse *= 1 / (1 + 0.5 * motion)     # perfusion signal weakens during movement

    # accelerometer: arm swing at half the step cadence, step impacts at the cadence,
    # gravity on slowly changing orientation
    cad = _smooth(cadence, 3.0)
    cad_phase = 2 * np.pi * np.cumsum(cad * (1 + 0.02 * _band_noise(rng, n, 0, 0.2))) / FS
    amp = _smooth(motion, 2.0)
    acc = np.empty((3, n))
    for axis in range(3):
        swing = np.sin(cad_phase / 2 + rng.uniform(0, 2 * np.pi))
        steps = np.sin(cad_phase + rng.uniform(0, 2 * np.pi))
        rough = _band_noise(rng, n, 1.0, 3.0)
        a = rng.uniform(0.3, 1.0) * swing + rng.uniform(0.2, 0.6) * steps
        a = np.where(irregular, rough, a)
        gravity = np.cos(rng.uniform(0, np.pi) + 0.5 * _band_noise(rng, n, 0, 0.05))
        acc[axis] = amp * a + gravity + 0.02 * rng.standard_normal(n)

    # motion artifact: sensor-skin coupling of the accelerations, with a squared term that adds
    # harmonics; subject-specific gains make it often stronger than the pulse
    coupling = rng.uniform(-1, 1, 3)
    coupling *= rng.uniform(0.5, 1.6) / np.linalg.norm(coupling)
    moving = acc - _smooth(acc, 1.0)
    artifact = coupling @ moving + rng.uniform(0.1, 0.4) * (moving[0] ** 2 - (moving[0] ** 2).mean())

    wander = 0.5 * _band_noise(rng, n, 0.02, 0.3) + 0.3 * np.sin(breath)
    ppg = pulse + artifact + wander + 0.05 * rng.standard_normal(n)
    return np.stack([ppg, *acc]), hr


def load_windows(n_subjects=60, minutes=3.0, seed=0):
    """X (n, 4, 256) float32 [ppg, acc_x, acc_y, acc_z], y (n,) mean heart rate (bpm) of each
    window, subject id (n,). Synthetic here; a loader for a real recording set such as PPG-DaLiA
    (BVP and ACC resampled to 32 Hz, ECG-derived heart rate per 8 s window) can replace this
    function, nothing else depends on how the windows are made."""
    rng = np.random.default_rng(seed)
    xs, ys, ids = [], [], []
    for subject in range(n_subjects):
        signals, hr = simulate_subject(rng, minutes)
        starts = np.arange(0, signals.shape[1] - WINDOW + 1, STEP)
        index = starts[:, None] + np.arange(WINDOW)
        xs.append(signals[:, index].transpose(1, 0, 2))
        ys.append(hr[index].mean(axis=1))
        ids.append(np.full(len(starts), subject))
    return (np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32),
            np.concatenate(ids))


def standardise(x):
    """Per window and channel: zero mean, unit variance (removes gain and gravity offsets)."""
    x = x - x.mean(axis=2, keepdims=True)
    return (x / (x.std(axis=2, keepdims=True) + 1e-6)).astype(np.float32)


def augment(x, rng):
    """Label-preserving variations: the watch may sit any way round on the wrist (accelerometer
    axes permuted and flipped), and heart rate does not change when time runs backwards."""
    n = len(x)
    axes = 1 + np.argsort(rng.random((n, 3)), axis=1)
    x = np.concatenate([x[:, :1], np.take_along_axis(x, axes[:, :, None], axis=1)], axis=1)
    x[:, 1:] *= rng.choice(np.array([-1, 1], x.dtype), size=(n, 3, 1))
    backwards = rng.random(n) < 0.5
    x[backwards] = x[backwards, :, ::-1]
    return x


def spectral_peak_bpm(x, low=0.5, high=3.5, nfft=4096):
    """Classical baseline: strongest peak of the Hann-windowed PPG spectrum in [low, high] Hz."""
    ppg = x[:, 0] - x[:, 0].mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(ppg * np.hanning(ppg.shape[1]), nfft))
    f = np.fft.rfftfreq(nfft, 1 / FS)
    band = (f >= low) & (f <= high)
    return 60 * f[band][spectrum[:, band].argmax(axis=1)]


class GlobalAvgPool(nn.Module):
    """Mean over time: the estimate may not depend on where in the window a feature appears."""

    def forward(self, x):
        return x.mean(axis=2)


def make_model():
    def block(c_in, c_out):
        return [nn.Conv1d(c_in, c_out, 9, padding=4), nn.ReLU(), nn.MaxPool1d(2)]

    # the first two convolutions are the benchmark layers ppg-c1 and ppg-c2 (batch 64)
    return nn.Sequential(*block(4, 32), *block(32, 64), *block(64, 64), *block(64, 64),
                         nn.Conv1d(64, 64, 9, padding=4), nn.ReLU(), GlobalAvgPool(),
                         nn.Linear(64, 1))


HR_MEAN, HR_SCALE = 100.0, 30.0  # the network predicts (bpm - HR_MEAN) / HR_SCALE


def predict(model, x, batch_size=512):
    with fastbp.no_grad():
        out = [model(fastbp.Tensor(x[i:i + batch_size])).data[:, 0] for i in range(0, len(x), batch_size)]
    return np.concatenate(out) * HR_SCALE + HR_MEAN


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--subjects", type=int, default=60)
    parser.add_argument("--test-subjects", type=int, default=15)
    parser.add_argument("--minutes", type=float, default=3.0, help="recording length per subject")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny data set (smoke test)")
    parser.add_argument("--wheel", help="kid-ppg 0.0.4 wheel holding the real S6 recording "
                        "(else downloaded once into a cache, see examples/kidppg/material.py)")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.test_subjects, args.minutes = 4, 1, 1.0

    t0 = time.perf_counter()
    x, y, subject = load_windows(args.subjects, args.minutes, args.seed)
    test = subject >= args.subjects - args.test_subjects
    x_train, y_train = standardise(x[~test]), y[~test]
    x_test, y_test = standardise(x[test]), y[test]
    print(f"{len(x_train)} training windows ({args.subjects - args.test_subjects} subjects), "
          f"{len(x_test)} test windows ({args.test_subjects} other subjects), "
          f"heart rate {y.min():.0f}-{y.max():.0f} bpm; simulated in {time.perf_counter() - t0:.1f} s")

    nn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = make_model()
    opt = fastbp.optim.Adam(model.parameters(), lr=args.lr)
    target = ((y_train - HR_MEAN) / HR_SCALE).astype(np.float32)[:, None]
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t1 = time.perf_counter()
        if epoch == int(0.7 * args.epochs) + 1:
            for group in opt.param_groups:
                group["lr"] *= 0.2  # one step decay for the last epochs
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.mse_loss(model(fastbp.Tensor(augment(x_train[idx], rng))), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        mae = np.abs(predict(model, x_test) - y_test).mean()
        print(f"epoch {epoch:2d}  train loss {total / len(order):.4f}  "
              f"test MAE {mae:5.2f} bpm  {time.perf_counter() - t1:.1f} s")

    cnn_mae = np.abs(predict(model, x_test) - y_test).mean()
    baseline_mae = np.abs(spectral_peak_bpm(x[test]) - y_test).mean()
    print(f"trained in {time.perf_counter() - start:.1f} s")
    print(f"test MAE: CNN {cnn_mae:.2f} bpm, spectral-peak baseline {baseline_mae:.2f} bpm")
    evaluate_on_real_recording(model, args.wheel)


def evaluate_on_real_recording(model, wheel=None):
    """The CNN trained on simulated subjects, on a real recording: PPG-DaLiA subject S6 climbing
    stairs (215 windows, ECG heart rate), from the KID-PPG authors' wheel. The simulation does
    not transfer: on these windows the CNN does far worse than on simulated test subjects, and
    worse than predicting the recording's mean heart rate for every window."""
    from kidppg import material
    try:
        x, y = material.load_demo(material.find_wheel(wheel))
    except (material.MaterialError, FileNotFoundError) as exc:
        print(f"real recording (PPG-DaLiA S6) unavailable, skipped: {exc}")
        return
    cnn_mae = np.abs(predict(model, standardise(x)) - y).mean()
    peak_mae = np.abs(spectral_peak_bpm(x) - y).mean()
    mean_mae = np.abs(y.mean() - y).mean()
    print(f"real PPG-DaLiA S6 stairs ({len(y)} windows) MAE: CNN {cnn_mae:.2f} bpm, "
          f"spectral-peak baseline {peak_mae:.2f} bpm, constant (the recording's mean) {mean_mae:.2f} bpm")


if __name__ == "__main__":
    main()
