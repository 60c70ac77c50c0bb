"""The liquid and interface regimes' recipes: a periodic water box and a water film with vacuum,
sampled by Langevin MD; their md and interface reference properties share one set of MD settings."""

from __future__ import annotations

import numpy as np

from optbench.data import sampling as S
from optbench.data.recipe import Job, Recipe, split_id, tag_frames
from optbench.data.structures import water_box


def _water_build(name, vacuum_key=None):
    def build(ref, rng, p):
        vac = p.get("vacuum", 0.0)
        box = water_box(p["molecules"], p["density"], np.random.default_rng(rng.randint(2**31)), vacuum=vac)
        box = S.relax(box, ref, fmax=0.1, steps=60)
        last = S.langevin(box, ref, temperature_K=300, timestep_fs=p["timestep_fs"], n_equil=p["n_equil"], n_frames=1,
                          interval=1, rng=rng, desc=f"equilibrate {name}")[-1]
        last.info.clear()
        out = {name: last}
        if "ood_density" in p:
            dense = water_box(p["molecules"], p["ood_density"], np.random.default_rng(rng.randint(2**31)))
            out[f"{name}_dense"] = S.relax(dense, ref, fmax=0.1, steps=60)
        return out
    return build


def _water_md(struct, temperature, split, tag, frames_key, partition=False):
    def run(structs, ref, rng, p):
        frames = S.langevin(structs[struct], ref, temperature_K=temperature, timestep_fs=p["timestep_fs"],
                            n_equil=p["n_equil"], n_frames=p[frames_key], interval=p["interval"], rng=rng,
                            desc=f"MD {struct} {temperature} K")
        frames = tag_frames(frames, structure=struct, config_type=f"md_{temperature}K")
        return split_id(frames, rng) if partition else {split: (tag, frames)}
    return run


# MD observables (md, interface properties): equilibration ends once two 0.2 ps blocks of temperature
# are within 20 K of 300 K (at most `property_equilibration_steps`), then `property_steps` x 0.5 fs of
# production. Diffusion needs >= 2.5 ps (lags 0.25-1.25 ps, at most half the run): the full sets have
# 5 ps; the small sets 1.5 ps (what ~40 min of one core affords with GFN1-xTB), so their
# diffusion is null with the reason.
_MD_SMALL = {"property_steps": 3000, "property_equilibration_steps": 800}
_MD_FULL = {"property_steps": 10000, "property_equilibration_steps": 2000}


def _md_settings(p: dict) -> dict:
    """Settings shared by the md and interface properties of the water regimes."""
    return {"temperature_K": 300.0, "timestep_fs": p["timestep_fs"], "equilibration_steps": p["property_equilibration_steps"],
            "equilibration_block_steps": 400, "equilibration_tolerance_K": 20.0, "nvt_steps": p["property_steps"],
            "sample_every": 10, "progress": False}


LIQUID = Recipe(
    params={
        "small": {"molecules": 16, "density": 1.0, "ood_density": 1.15, "timestep_fs": 0.5, "n_equil": 40,
                  "interval": 6, "frames_id": 50, "frames_ood": 15, **_MD_SMALL,
                  "property_npt_steps": 0},
        "full": {"molecules": 32, "density": 1.0, "ood_density": 1.15, "timestep_fs": 0.5, "n_equil": 1000,
                 "interval": 20, "frames_id": 400, "frames_ood": 100, **_MD_FULL, "property_npt_steps": 4000},
    },
    build=_water_build("water"),
    jobs=[
        Job("id_300K", _water_md("water", 300, None, None, "frames_id", partition=True)),
        Job("ood_400K", _water_md("water", 400, "ood_400K", "OOD", "frames_ood")),
        Job("ood_dense", _water_md("water_dense", 300, "ood_dense", "OOD", "frames_ood")),
    ],
    properties=lambda p: {"water": {"md": {**_md_settings(p), "nve_steps": 0, "npt_steps": p["property_npt_steps"]}}},
    notes="periodic water box at 1.0 g/cm^3, Gamma-point xTB; ID = 300 K MD; OOD = 400 K MD and a 1.15 g/cm^3 box",
)

INTERFACE = Recipe(
    params={
        "small": {"molecules": 16, "density": 1.0, "vacuum": 12.0, "timestep_fs": 0.5, "n_equil": 40,
                  "interval": 6, "frames_id": 50, "frames_ood": 15, **_MD_SMALL},
        "full": {"molecules": 32, "density": 1.0, "vacuum": 15.0, "timestep_fs": 0.5, "n_equil": 1000,
                 "interval": 20, "frames_id": 400, "frames_ood": 100, **_MD_FULL},
    },
    build=_water_build("water_film"),
    jobs=[
        Job("id_300K", _water_md("water_film", 300, None, None, "frames_id", partition=True)),
        Job("ood_400K", _water_md("water_film", 400, "ood_400K", "OOD", "frames_ood")),
    ],
    properties=lambda p: {"water_film": {"interface": {**_md_settings(p), "axis": 2}}},
    notes="water film (two liquid/vapour interfaces) in a periodic slab with vacuum along z; ID = 300 K MD; OOD = 400 K MD",
)

