"""The report's section "How far to trust these results": one figure and a page of plain sentences."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from speechneurons.pages import render  # noqa: E402
from speechneurons.reliability.agreement import DEPENDS_BELOW, baseline_dependent  # noqa: E402
from speechneurons.reliability.common import FEATURES  # noqa: E402

#: The page's template (speechneurons/templates/).
TEMPLATE = "reliability.html"

#: a unit kept in at least this share of speaker resamples counts as stable
STABLE_KEPT = 0.9


def plot_reliability(agreement: pd.DataFrame, curves: pd.DataFrame, randomisation: pd.DataFrame,
                     bootstrap_layers: pd.DataFrame, target: str) -> plt.Figure:
    """Four panels: agreement per layer and setting, mean deletion curves, rho over the cascade,
    bootstrap Jaccard per layer. A check without data says so in its panel."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_a, ax_d), (ax_r, ax_b) = axes

    def empty(ax, text):
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)

    if agreement.empty:
        empty(ax_a, "Agreement across settings: not computed\n(one combination, or none differing in one setting)")
    else:
        data = agreement.assign(pair=agreement["setting"] + ": " + agreement["a"] + " vs " + agreement["b"],
                                where=agreement["site"] + " " + agreement["layer"].astype(str))
        sns.pointplot(data=data, x="where", y="median_rho", hue="pair", ax=ax_a, linestyle="none",
                      dodge=0.3, markers="o")
        ax_a.axhline(DEPENDS_BELOW, color="grey", ls=":", lw=1)
        ax_a.set(ylim=(-1.05, 1.05), xlabel="site, layer", ylabel="median Spearman rho",
                 title="Agreement of attribution curves across settings")
        ax_a.tick_params(axis="x", rotation=45)
    if curves.empty:
        empty(ax_d, "Deletion curves: not computed")
    else:
        mean = curves[curves["order"] != "sum of single"].groupby(["order", "fraction"])["drop_norm"].mean()
        for order, line in mean.groupby(level="order"):
            ax_d.plot(line.index.get_level_values("fraction"), line.to_numpy(), marker="o", ms=3,
                      label=f"deleted in {order} order")
        summed = curves[curves["order"] == "sum of single"].groupby("fraction")["drop_norm"].mean()
        ax_d.plot(summed.index, summed.to_numpy(), ls="--", color="grey", label="sum of single attributions")
        ax_d.set(xlabel="fraction of segments deleted", ylabel="drop / attributed mass",
                 title="Deletion curves (sampled units and clips)")
        ax_d.legend(fontsize=8)
    if randomisation.empty:
        empty(ax_r, "Model randomisation: not computed")
    else:
        reached = randomisation[randomisation["reached"]]
        med = reached.groupby(["site", "layer", "randomised_from"])["rho"].median().reset_index()
        med["where"] = med["site"] + " " + med["layer"].astype(str)
        order = sorted(med["randomised_from"].unique(), reverse=True)
        med["position"] = med["randomised_from"].map({k: i for i, k in enumerate(order)})
        for where, line in med.groupby("where"):
            ax_r.plot(line["position"], line["rho"], marker="o", label=where)
        ax_r.set_xticks(range(len(order)), ["all" if k == FEATURES else f"{k} and up" for k in order])
        ax_r.set(ylim=(-1.05, 1.05), xlabel="transformer layers re-initialised (top down)",
                 ylabel="median rho with the trained model", title="Cascading model randomisation")
        ax_r.legend(fontsize=7, ncol=2)
    if bootstrap_layers.empty:
        empty(ax_b, "Speaker bootstrap: not computed (no top-k unit)")
    else:
        data = bootstrap_layers.assign(where=bootstrap_layers["site"] + " "
                                       + bootstrap_layers["layer"].astype(str))
        sns.pointplot(data=data, x="where", y="mean_jaccard", hue=target, ax=ax_b, linestyle="none",
                      dodge=0.3)
        ax_b.set(ylim=(-0.05, 1.05), xlabel="site, layer", ylabel="mean Jaccard of the top k",
                 title="Stability of the selection over speakers")
        ax_b.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def _share(values: pd.Series) -> str:
    return f"{100 * values.mean():.0f} %" if len(values.dropna()) else "n/a"


def findings(agreement: pd.DataFrame, deletion: pd.DataFrame, flags: pd.DataFrame,
             bootstrap_units: pd.DataFrame, bootstrap_layers: pd.DataFrame, seconds: dict[str, float]
             ) -> list[tuple[str, str]]:
    """(heading, sentence) per check, with its numbers, for a reader who skims."""
    out = []
    if agreement.empty:
        out.append(("Across settings", "Not compared: the study has one ablation combination (or none that "
                    "differ in one setting). Give two baselines or segment lengths to compare them."))
    else:
        parts = []
        for setting, rows in agreement.groupby("setting"):
            pairs = ", ".join(sorted(set(rows["a"] + " vs " + rows["b"])))
            parts.append(f"{setting} ({pairs}): median rank correlation {rows['median_rho'].median():.2f}, "
                         f"peak segment agrees in {_share(rows['peak_agreement'])} "
                         f"(chance {_share(rows['chance_peak'])})")
        dependent = baseline_dependent(agreement)
        where = ("The conclusions depend on the baseline at "
                 + ", ".join(sorted(set(dependent["site"] + " layer " + dependent["layer"].astype(str))))
                 + f" (median rho below {DEPENDS_BELOW})." if len(dependent)
                 else ("No layer's curves fall below a median rho of "
                       f"{DEPENDS_BELOW} between baselines." if (agreement["setting"] == "baseline").any()
                       else "Baselines were not compared (one baseline)."))
        out.append(("Across settings", "; ".join(parts) + ". " + where))
    if deletion.empty:
        out.append(("Deletion and additivity", "Not computed."))
    else:
        area = deletion["area_between"]
        gap = deletion["additivity_gap"]
        out.append(("Deletion and additivity",
                    f"Deleting segments in attribution order lowers a unit faster than random order in "
                    f"{_share(area > 0)} of the {len(deletion)} sampled (unit, clip, combination) cases "
                    f"(median area between the curves {area.median():.3f} of the attributed mass). "
                    f"The single-segment attributions miss the joint effect by a median "
                    f"{gap.median():.3f} of the attributed mass (0 = they add up exactly)."))
    if flags.empty:
        out.append(("Model randomisation", "Not computed."))
    else:
        flagged = flags[flags["flagged"]]
        names = ", ".join(f"{r.site} {r.layer}/{r.neuron}" for r in flagged.itertuples())
        out.append(("Model randomisation",
                    f"With every weight re-initialised, the sampled units' attributions keep a median rank "
                    f"correlation of {flags['rho_all'].median():.2f} with the trained model's. "
                    f"{len(flagged)} of {len(flags)} units keep a correlation of at least the threshold "
                    f"and are flagged: their attributions follow the input, not what the model "
                    f"learnt{' (' + names + ')' if names else ''}."))
    if bootstrap_layers.empty:
        out.append(("Stability over speakers", "Not computed: no top-k unit was selected."))
    else:
        study = bootstrap_units[bootstrap_units["fold"] == -1]
        stable = study["kept"] >= STABLE_KEPT
        tested = bootstrap_units[bootstrap_units["fold"] >= 0].dropna(subset=["effect_low"])
        above = int((tested["effect_low"] > 0).sum())
        out.append(("Stability over speakers",
                    f"Resampling speakers, the top-k sets keep a mean Jaccard index of "
                    f"{bootstrap_layers['mean_jaccard'].mean():.2f} with the study's; {int(stable.sum())} of "
                    f"{len(study)} selected units stay selected in at least "
                    f"{100 * STABLE_KEPT:.0f} % of resamples. On the speakers that did not choose them, "
                    f"{above} of {len(tested)} cross-fitted units have a 95 % interval of their level "
                    "contrast above 0."))
    if seconds:
        out.append(("Cost", "; ".join(f"{k}: {v:.1f} s" for k, v in seconds.items()) + " (this run)."))
    return out


def reliability_page(title: str, items: list[tuple[str, str]], notes: list[str]) -> str:
    """A self-contained HTML page: one heading and sentence per check, then the notes."""
    return render(TEMPLATE, title=title, items=items, notes=notes)
