"""Physically motivated machine sounds for the built-in synthetic data set.

Each machine type is a small model with an operating point per section and domain
(written into the attribute suffix of the file name), a normal sound, and several
anomaly kinds whose strength grows with a level in (0, 1]. The target domain runs
the machine at a shifted operating point in a different background.

The models are deliberately simple signal-level descriptions: harmonic series of
rotating parts, sidebands from modulation, decaying resonances excited by impacts
(bearings, gears, valves, rail joints) and shaped noise for flow and friction.
"""

from dataclasses import dataclass

import numpy as np

from asd_tools.constants import SAMPLE_RATE

SR = SAMPLE_RATE


# ----------------------------------------------------------------------------- DSP helpers
def shaped_noise(rng, n, slope=0.0, low=20.0, high=7900.0):
    """Gaussian noise with a 1/f**slope power spectrum limited to [low, high] Hz, unit RMS."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    gain = np.where((freqs >= low) & (freqs <= high), 1.0, 0.0)
    gain[1:] *= freqs[1:] ** (-slope / 2.0)
    x = np.fft.irfft(spec * gain, n)
    return x / (np.std(x) + 1e-12)


def wander(rng, n, depth, rate=0.5):
    """Slow random relative frequency wander (e.g. load fluctuations), mean 1."""
    knots = max(int(n / SR * rate) + 2, 2)
    curve = np.interp(np.linspace(0, knots - 1, n), np.arange(knots), rng.standard_normal(knots))
    return 1.0 + depth * curve


def harmonics(rng, n, f0, amps, freq_curve=None):
    """Sum of harmonics k*f0 (k = 1..len(amps)) with random phases, following ``freq_curve``."""
    curve = np.ones(n) if freq_curve is None else freq_curve
    phase = 2 * np.pi * np.cumsum(f0 * curve) / SR
    out = np.zeros(n)
    for k, amp in enumerate(amps, start=1):
        if amp and k * f0 < SR / 2 - 200:
            out += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def ringing(n, times, freq, decay, amps=1.0, rng=None, freq_jitter=0.0):
    """Decaying sinusoids (a struck resonance) starting at ``times`` seconds."""
    out = np.zeros(n)
    length = min(int(SR * 6.0 / decay), n)
    t = np.arange(length) / SR
    amps = np.broadcast_to(np.asarray(amps, dtype=float), (len(times),))
    for start, amp in zip(times, amps):
        f = freq * (1 + freq_jitter * rng.standard_normal()) if rng is not None else freq
        pulse = amp * np.exp(-decay * t) * np.sin(2 * np.pi * f * t)
        i = int(start * SR)
        if 0 <= i < n:
            m = min(length, n - i)
            out[i : i + m] += pulse[:m]
    return out


def periodic_times(rng, n, rate, jitter=0.0):
    """Event times of a process at ``rate`` Hz with relative timing jitter."""
    duration = n / SR
    period = 1.0 / rate
    start = rng.uniform(0, period)
    times = np.arange(start, duration, period)
    return times + jitter * period * rng.standard_normal(len(times))


def rms(x):
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def at_rms(x, level):
    return x * (level / rms(x))


# ------------------------------------------------------------------------- machine models
@dataclass
class OperatingPoint:
    """Physical parameters of one clip and the attribute suffix that names them."""

    params: dict
    attributes: str


class MachineModel:
    """A machine type: its sections' operating points, its normal sound, its faults."""

    anomaly_kinds: tuple = ()

    def operating_point(self, section, domain, rng) -> OperatingPoint:
        raise NotImplementedError

    def normal(self, p, rng, n):
        raise NotImplementedError

    def anomaly(self, kind, level, p, rng, n, clean):
        """The fault's added (or transformed) signal, given the clean machine sound."""
        raise NotImplementedError

    def render(self, op: OperatingPoint, rng, n, anomaly=None):
        # normal() may leave timing context (e.g. a valve's open gate) in this copy for anomaly().
        params = dict(op.params)
        clean = self.normal(params, rng, n)
        clean = at_rms(clean, 1.0)
        if anomaly is not None:
            kind, level = anomaly
            clean = self.anomaly(kind, level, params, rng, n, clean)
        return clean


def _choice(rng, values):
    return values[int(rng.integers(len(values)))]


class Fan(MachineModel):
    """Blade-pass harmonics over broadband turbulence."""

    anomaly_kinds = ("imbalance", "blade_damage", "clogging")
    RPM = (1200, 1500, 1800, 1350, 1650, 1950)
    BLADES = (5, 7, 9, 6, 8, 5)

    def operating_point(self, section, domain, rng):
        rpm = self.RPM[section] * (1.3 if domain == "target" else 1.0) * _choice(rng, (0.95, 1.0, 1.05))
        mic = _choice(rng, ("W", "X") if domain == "source" else ("Y", "Z"))
        return OperatingPoint(
            {"f_shaft": rpm / 60.0, "blades": self.BLADES[section], "tilt": 1.0 + 0.1 * section},
            f"m-n_{mic}_rpm_{int(round(rpm))}",
        )

    def normal(self, p, rng, n):
        curve = wander(rng, n, 0.004)
        bpf = p["blades"] * p["f_shaft"]
        tones = harmonics(rng, n, bpf, [1.0 / k**1.2 for k in range(1, 8)], curve)
        turb = shaped_noise(rng, n, slope=p["tilt"], low=150, high=6000)
        turb *= 1 + 0.15 * np.sin(2 * np.pi * bpf * np.cumsum(curve) / SR)
        return at_rms(tones, 0.7) + at_rms(turb, 0.7)

    def anomaly(self, kind, level, p, rng, n, clean):
        curve = wander(rng, n, 0.004)
        if kind == "imbalance":  # once-per-revolution force: shaft tone and AM
            am = 1 + 0.35 * level * np.sin(2 * np.pi * p["f_shaft"] * np.cumsum(curve) / SR)
            return clean * am + 0.4 * level * harmonics(rng, n, p["f_shaft"], [1, 0.5], curve)
        if kind == "blade_damage":  # one blade differs: every shaft harmonic appears
            amps = [0.3 * level / k**0.5 for k in range(1, 30)]
            return clean + harmonics(rng, n, p["f_shaft"], amps, curve)
        # clogging: more turbulence at high frequencies
        return clean + 0.8 * level * shaped_noise(rng, n, slope=0.0, low=2000, high=7000)


class Gearbox(MachineModel):
    """Gear-mesh harmonics with shaft-rate sidebands."""

    anomaly_kinds = ("cracked_tooth", "wear", "misalignment")
    VOLT = (1.5, 2.0, 2.5, 1.8, 2.3, 2.8)
    TEETH = (23, 31, 19, 27, 21, 35)

    def operating_point(self, section, domain, rng):
        volt = self.VOLT[section] + (0.6 if domain == "target" else 0.0) + _choice(rng, (-0.1, 0.0, 0.1))
        weight = _choice(rng, (0, 30, 80) if domain == "source" else (150, 200))
        return OperatingPoint(
            {"f_shaft": 6.0 * volt, "teeth": self.TEETH[section], "load": weight / 200.0},
            f"volt_{volt:.1f}_wt_{weight}",
        )

    def normal(self, p, rng, n):
        curve = wander(rng, n, 0.003)
        f_mesh = p["teeth"] * p["f_shaft"]
        mesh = harmonics(rng, n, f_mesh, [1.0, 0.5, 0.3, 0.15], curve)
        side = 1 + 0.08 * np.sin(2 * np.pi * p["f_shaft"] * np.cumsum(curve) / SR)
        motor = harmonics(rng, n, 100.0, [0.3, 0.1])
        noise = shaped_noise(rng, n, slope=1.0, low=50, high=5000)
        return at_rms(mesh * side, 0.8) + at_rms(motor, 0.2 + 0.2 * p["load"]) + at_rms(noise, 0.4)

    def anomaly(self, kind, level, p, rng, n, clean):
        if kind == "cracked_tooth":  # one impact per revolution exciting a housing mode
            times = periodic_times(rng, n, p["f_shaft"], jitter=0.01)
            return clean + ringing(n, times, 2600.0, 300.0, 2.0 * level, rng, 0.03)
        if kind == "wear":  # stronger sidebands around the mesh harmonics
            curve = wander(rng, n, 0.003)
            am = 1 + 0.5 * level * np.sin(2 * np.pi * p["f_shaft"] * np.cumsum(curve) / SR)
            return clean * am
        # misalignment: second mesh harmonic grows
        f_mesh = p["teeth"] * p["f_shaft"]
        return clean + 0.6 * level * harmonics(rng, n, 2 * f_mesh, [1.0, 0.3])


class Bearing(MachineModel):
    """Shaft hum and a structural resonance weakly excited by rolling elements."""

    anomaly_kinds = ("outer_race", "inner_race", "lubrication")
    VEL = (6, 8, 10, 7, 9, 11)
    RESONANCE = (3200, 3800, 4300, 3500, 4000, 4600)

    def operating_point(self, section, domain, rng):
        vel = self.VEL[section] + (4 if domain == "target" else 0) + _choice(rng, (-1, 0, 1))
        loc = _choice(rng, ("A", "B") if domain == "source" else ("C", "D"))
        return OperatingPoint({"f_shaft": 3.0 * vel, "resonance": self.RESONANCE[section]}, f"vel_{vel}_loc_{loc}")

    def normal(self, p, rng, n):
        hum = harmonics(rng, n, p["f_shaft"], [1.0, 0.4, 0.2, 0.1], wander(rng, n, 0.003))
        rolling = shaped_noise(rng, n, slope=0.0, low=p["resonance"] - 400, high=p["resonance"] + 400)
        body = shaped_noise(rng, n, slope=1.5, low=40, high=3000)
        return at_rms(hum, 0.5) + at_rms(rolling, 0.3) + at_rms(body, 0.6)

    def anomaly(self, kind, level, p, rng, n, clean):
        if kind == "outer_race":  # impacts at the ball-pass frequency of the outer race
            times = periodic_times(rng, n, 3.6 * p["f_shaft"], jitter=0.02)
            return clean + ringing(n, times, p["resonance"], 900.0, 1.5 * level, rng, 0.02)
        if kind == "inner_race":  # ball-pass frequency of the inner race, modulated by the shaft
            times = periodic_times(rng, n, 5.4 * p["f_shaft"], jitter=0.02)
            amps = 1.5 * level * (1 + np.sin(2 * np.pi * p["f_shaft"] * times)) / 2
            return clean + ringing(n, times, p["resonance"], 900.0, amps, rng, 0.02)
        return clean + 0.5 * level * shaped_noise(rng, n, slope=0.0, low=2000, high=7800)


class Valve(MachineModel):
    """Open/close transients in a section-specific pattern, with flow hiss while open."""

    anomaly_kinds = ("leak", "sticking", "chattering")
    PATTERNS = ((0.0, 1.2, 2.5), (0.0, 0.6, 1.8, 2.4), (0.0, 2.0), (0.0, 0.9, 1.5), (0.0, 1.4), (0.0, 0.5, 1.0, 2.2))

    def operating_point(self, section, domain, rng):
        panel = _choice(rng, ("open", "b-c") if domain == "source" else ("s-c", "bs-c"))
        return OperatingPoint(
            {
                "pattern": self.PATTERNS[section],
                "period": 3.0 if domain == "source" else 2.3,
                "click_freq": 1400.0 + 150 * section,
                "open_time": 0.35 + 0.02 * section,
            },
            f"pat_{section:02d}_panel_{panel}",
        )

    def _events(self, p, rng, n):
        duration = n / SR
        offset = rng.uniform(0, p["period"])
        starts = [
            c * p["period"] + t + offset - p["period"]
            for c in range(int(duration / p["period"]) + 2)
            for t in p["pattern"]
        ]
        return np.array([s for s in starts if -1.0 < s < duration])

    def normal(self, p, rng, n):
        opens = self._events(p, rng, n)
        gate = np.zeros(n)
        for s in opens:
            a, b = max(int(s * SR), 0), min(int((s + p["open_time"]) * SR), n)
            gate[a:b] = 1.0
        clicks = ringing(n, opens[opens >= 0], p["click_freq"], 120.0, 1.0, rng, 0.01)
        closes = opens + p["open_time"]
        clicks += ringing(n, closes[(closes >= 0)], 0.7 * p["click_freq"], 150.0, 0.6, rng, 0.01)
        hiss = shaped_noise(rng, n, slope=0.5, low=800, high=6000) * gate
        pump = harmonics(rng, n, 50.0, [0.2, 0.1])
        p["_gate"] = gate
        return 1.0 * clicks + 0.25 * hiss + pump

    def anomaly(self, kind, level, p, rng, n, clean):
        gate = p.pop("_gate")
        if kind == "leak":  # flow continues while closed
            return clean + 0.25 * level * shaped_noise(rng, n, slope=0.3, low=1500, high=7000) * (1 - gate)
        if kind == "sticking":  # late, damped re-opening clicks
            times = self._events(p, rng, n) + 0.08 + 0.1 * level
            return clean + ringing(n, times[times >= 0], 0.5 * p["click_freq"], 60.0, 0.8 * level, rng, 0.02)
        times = self._events(p, rng, n) + 0.05
        times = np.concatenate([times + k * 0.03 for k in range(3)])
        return clean + ringing(n, times[times >= 0], 1.8 * p["click_freq"], 250.0, 0.6 * level, rng, 0.05)


class Slider(MachineModel):
    """Periodic strokes: motor whine and rail friction while moving, knocks at the ends."""

    anomaly_kinds = ("rail_damage", "no_grease", "loose_belt")
    VEL = (300, 500, 700, 400, 600, 800)

    def operating_point(self, section, domain, rng):
        vel = self.VEL[section] * (1.4 if domain == "target" else 1.0)
        ac = _choice(rng, (0.1, 0.2) if domain == "source" else (0.4, 0.5))
        return OperatingPoint({"stroke_rate": vel / 400.0, "motor": 0.4 * vel, "ac": ac}, f"vel_{int(vel)}_ac_{ac}")

    def _motion(self, p, rng, n, jitter=0.0):
        times = periodic_times(rng, n, p["stroke_rate"], jitter=jitter)
        t = np.arange(n) / SR
        moving = np.zeros(n)
        for s in times:
            moving += np.exp(-0.5 * ((t - s - 0.5 / p["stroke_rate"] / 2) / (0.15 / p["stroke_rate"])) ** 2)
        return times, np.clip(moving, 0, 1)

    def normal(self, p, rng, n):
        times, moving = self._motion(p, rng, n, jitter=0.005)
        whine = harmonics(rng, n, p["motor"], [1.0, 0.4, 0.2], wander(rng, n, 0.005)) * moving
        friction = shaped_noise(rng, n, slope=1.0, low=200, high=4000) * moving
        knocks = ringing(n, times[times >= 0], 900.0, 200.0, 1.0 + 2 * p["ac"], rng, 0.02)
        p["_moving"], p["_times"] = moving, times
        return at_rms(whine, 0.4) + at_rms(friction, 0.4) + 0.5 * knocks

    def anomaly(self, kind, level, p, rng, n, clean):
        moving, times = p.pop("_moving"), p.pop("_times")
        if kind == "rail_damage":  # a click where the carriage passes the damage
            mid = times + 0.23 / p["stroke_rate"]
            return clean + ringing(n, mid[mid >= 0], 3000.0, 500.0, 0.8 * level, rng, 0.05)
        if kind == "no_grease":  # squeal while moving
            return clean + 0.3 * level * harmonics(rng, n, 2300.0, [1.0], wander(rng, n, 0.02, 3)) * moving
        jitter_times = times + 0.03 * level * rng.standard_normal(len(times))
        return clean + ringing(n, jitter_times[jitter_times >= 0], 450.0, 80.0, 0.8 * level, rng, 0.1)


class ToyCar(MachineModel):
    """DC-motor whine with gear harmonics, speed set by the supply voltage."""

    anomaly_kinds = ("shaft_bend", "gear_chip", "tyre_damage")
    SPEED = (28, 31, 34, 29, 32, 35)

    def operating_point(self, section, domain, rng):
        spd = self.SPEED[section] + (6 if domain == "target" else 0)
        car = f"{'AB'[section % 2]}{section + 1}"
        mic = _choice(rng, (1, 2))
        noise = _choice(rng, (1, 2) if domain == "source" else (3, 4))
        return OperatingPoint(
            {"f_motor": 8.0 * spd, "f_wheel": spd / 6.0},
            f"car_{car}_spd_{spd}V_mic_{mic}_noise_{noise}",
        )

    def normal(self, p, rng, n):
        curve = wander(rng, n, 0.01)
        whine = harmonics(rng, n, p["f_motor"], [1.0, 0.6, 0.3, 0.2, 0.1], curve)
        gear = harmonics(rng, n, 4.5 * p["f_motor"], [0.4, 0.1], curve)
        road = shaped_noise(rng, n, slope=1.2, low=60, high=3000)
        return at_rms(whine, 0.6) + at_rms(gear, 0.3) + at_rms(road, 0.6)

    def anomaly(self, kind, level, p, rng, n, clean):
        if kind == "shaft_bend":
            return clean * (1 + 0.4 * level * np.sin(2 * np.pi * p["f_wheel"] * np.arange(n) / SR))
        if kind == "gear_chip":
            times = periodic_times(rng, n, p["f_wheel"] * 2, jitter=0.02)
            return clean + ringing(n, times, 2200.0, 400.0, 1.2 * level, rng, 0.05)
        times = periodic_times(rng, n, p["f_wheel"], jitter=0.02)
        return clean + ringing(n, times, 180.0, 60.0, 1.5 * level, rng, 0.05)


class ToyTrain(MachineModel):
    """Rail-joint clicks (pairs of bogies) and motor hum, timing set by speed."""

    anomaly_kinds = ("flat_wheel", "flange_squeal", "loose_joint")
    SPEED = (6, 8, 10, 7, 9, 11)

    def operating_point(self, section, domain, rng):
        spd = self.SPEED[section] + (4 if domain == "target" else 0)
        car = f"{'AB'[section % 2]}{section + 1}"
        noise = _choice(rng, (1, 2) if domain == "source" else (3, 4))
        return OperatingPoint(
            {"joint_rate": spd / 5.0, "bogie_gap": 0.9 / spd, "f_motor": 15.0 * spd},
            f"car_{car}_spd_{spd}_mic_1_noise_{noise}",
        )

    def normal(self, p, rng, n):
        joints = periodic_times(rng, n, p["joint_rate"], jitter=0.01)
        times = np.concatenate([joints, joints + p["bogie_gap"]])
        clicks = ringing(n, times[times >= 0], 1100.0, 180.0, 1.0, rng, 0.05)
        hum = harmonics(rng, n, p["f_motor"], [1.0, 0.5, 0.25], wander(rng, n, 0.01))
        rumble = shaped_noise(rng, n, slope=1.5, low=40, high=2500)
        return 0.8 * clicks + at_rms(hum, 0.3) + at_rms(rumble, 0.5)

    def anomaly(self, kind, level, p, rng, n, clean):
        if kind == "flat_wheel":
            times = periodic_times(rng, n, 3.0 * p["joint_rate"], jitter=0.02)
            return clean + ringing(n, times, 700.0, 250.0, 0.8 * level, rng, 0.05)
        if kind == "flange_squeal":
            gate = (np.sin(2 * np.pi * 0.3 * np.arange(n) / SR + rng.uniform(0, 6.3)) > 0.3).astype(float)
            return clean + 0.25 * level * harmonics(rng, n, 3100.0, [1.0, 0.3], wander(rng, n, 0.01, 2)) * gate
        joints = periodic_times(rng, n, p["joint_rate"], jitter=0.08 * level)
        return clean + ringing(n, joints, 1100.0, 180.0, 0.7 * level, rng, 0.1)


MACHINE_MODELS = {
    "bearing": Bearing,
    "fan": Fan,
    "gearbox": Gearbox,
    "slider": Slider,
    "ToyCar": ToyCar,
    "ToyTrain": ToyTrain,
    "valve": Valve,
}


# ------------------------------------------------------------------------------ background
def background(rng, n, domain, section):
    """Factory background: coloured noise, mains hum and random transients.

    The target domain has another spectral colour, a louder hum and more transients.
    """
    slope = (1.0 if domain == "source" else 0.4) + 0.05 * section
    noise = shaped_noise(rng, n, slope=slope, low=30, high=7900)
    hum = harmonics(rng, n, 50.0 if domain == "source" else 60.0, [1.0, 0.5, 0.3])
    rate = 0.3 if domain == "source" else 0.8
    count = rng.poisson(rate * n / SR)
    times = rng.uniform(0, n / SR, count)
    transients = ringing(n, times, rng.uniform(300, 3000), rng.uniform(30, 120), rng.uniform(0.5, 2.0, count), rng, 0.3)
    hum_level = 0.15 if domain == "source" else 0.35
    return at_rms(noise, 1.0) + at_rms(hum, hum_level) + 0.6 * transients


# --------------------------------------------------------------------- outlier pool sounds
def _speech_like(rng, n):
    """A glottal pulse train with a wandering pitch through moving formant bands, in syllables."""
    f0 = rng.uniform(90, 220) * wander(rng, n, 0.15, 3.0)
    source = harmonics(rng, n, 1.0, [1.0 / k for k in range(1, 40)], f0)
    formants = sum(shaped_noise(rng, n, 0.0, f, f * 1.15) * 0.3 for f in rng.uniform(300, 3000, 3))
    syllables = (np.sin(2 * np.pi * rng.uniform(3, 6) * np.arange(n) / SR) > -0.2).astype(float)
    return (source + formants) * syllables


def _music_like(rng, n):
    """Chords of harmonic tones with note onsets."""
    out = np.zeros(n)
    note = int(SR * rng.uniform(0.25, 0.6))
    for start in range(0, n, note):
        seg = min(note, n - start)
        envelope = np.exp(-np.arange(seg) / (0.3 * note))
        for root in 110 * 2 ** (rng.integers(0, 24, 3) / 12):
            out[start : start + seg] += envelope * harmonics(rng, seg, root, [1.0, 0.5, 0.25, 0.12])
    return out


def _birds(rng, n):
    """Frequency-swept chirps."""
    out = np.zeros(n)
    for start in rng.uniform(0, n / SR, rng.integers(5, 20)):
        seg = int(SR * rng.uniform(0.05, 0.3))
        i = int(start * SR)
        seg = min(seg, n - i)
        f = np.linspace(rng.uniform(2000, 5000), rng.uniform(2000, 6000), seg)
        out[i : i + seg] += np.sin(2 * np.pi * np.cumsum(f) / SR) * np.hanning(seg)
    return out


def _rain(rng, n):
    """Broadband noise with droplet clicks."""
    drops = ringing(n, rng.uniform(0, n / SR, rng.integers(50, 300)), 3500.0, 400.0, 1.0, rng, 0.4)
    return shaped_noise(rng, n, 0.3, 200, 7800) + 2 * drops


OUTLIER_SOUNDS = {"speech": _speech_like, "music": _music_like, "birds": _birds, "rain": _rain}


def outlier_sound(kind, rng, n):
    """A non-machine sound of ``kind`` (a key of OUTLIER_SOUNDS), unit RMS."""
    return at_rms(OUTLIER_SOUNDS[kind](rng, n), 1.0)
