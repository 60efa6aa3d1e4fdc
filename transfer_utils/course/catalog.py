"""The course map: which lesson teaches what, and how long each one took when measured.

Minutes come from ``bench/results/lesson_times.csv``, written by ``python bench/lesson_times.py``;
the README's lesson map and notebook 00's table are generated from it, never typed by hand.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from transfer_utils.core.paths import REPO_ROOT, notebooks_dir
from transfer_utils.core.storage import atomic_write_text
from transfer_utils.course import authoring, imports

TIMES_CSV = REPO_ROOT / "bench" / "results" / "lesson_times.csv"
MAP_START, MAP_END = "<!-- lesson-map:start -->", "<!-- lesson-map:end -->"
RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
TIME_LINE = re.compile(r"\*\*Time\.\*\*[^\n]*")


@dataclass(frozen=True)
class LessonInfo:
    """One row of the curriculum."""

    stem: str
    title: str
    teaches: str
    reading_min: int = 0  # a learner's minutes to read the lesson with its figures (estimated, see docs/instructor_guide.md)
    exercise_min: int = 0  # a learner's minutes for its exercises


CURRICULUM = [
    LessonInfo("00_setup_and_tour", "Set-up and tour",
               "environment check, offline assets, profiles and papermill, a first frozen-feature probe", 15, 25),
    LessonInfo("01_why_transfer", "Why transfer", "learning curves: scratch vs frozen features vs fine-tuning", 35, 40),
    LessonInfo("02_instance_based", "Instance-based transfer", "importance weights, KMM, KLIEP, TrAdaBoost", 40, 30),
    LessonInfo("03_feature_based", "Feature-based transfer", "linear probes, CORAL, subspace alignment, TCA, MMD", 40, 45),
    LessonInfo("04_model_based", "Model-based transfer", "freezing schedules, layer-wise rates, L2-SP, forgetting", 40, 40),
    LessonInfo("05_domain_adaptation", "Domain adaptation", "DANN with gradient reversal, Deep CORAL", 40, 50),
    LessonInfo("06_attention_math", "Attention math", "softmax(QKᵀ/√d_k)V by hand, checked against BERT", 45, 35),
    LessonInfo("07_bert_fine_tuning", "BERT fine-tuning", "the full, correct fine-tuning pipeline and its pitfalls", 55, 45),
    LessonInfo("08_resnet_image_transfer", "ResNet and EfficientNet image transfer",
               "feature extractor vs fine-tuning (EfficientNet-Lite0), layer transfer (ResNet)", 50, 35),
    LessonInfo("09_distillation_multitask_relations", "Distillation, multi-task, relations", "soft targets, shared encoders", 55, 60),
    LessonInfo("10_applications", "Applications", "intent routing, sentiment monitoring, semantic search", 40, 45),
    LessonInfo("11_parameter_efficient_fine_tuning", "Parameter-efficient fine-tuning", "LoRA and adapters vs full fine-tuning", 35, 45),
    LessonInfo("12_scaling_out", "Scaling out", "accelerate / DDP, gradient accumulation, mixed precision", 40, 75),
]


def measured_minutes(path: Path = TIMES_CSV) -> dict[tuple[str, str], float]:
    """(notebook, profile) → minutes, from the latest measurement file (empty if not measured yet)."""
    if not path.exists():
        return {}
    with open(path, newline="") as handle:
        return {(r["notebook"], r["profile"]): float(r["seconds"]) / 60 for r in csv.DictReader(handle)}


def measured_on(profile: str = "default", path: Path = TIMES_CSV) -> str:
    """One sentence naming the processor each lesson's minutes in ``profile`` were measured on."""
    if not path.exists():
        return ""
    lessons: dict[str, list[str]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["profile"] == profile:
                lessons.setdefault(row.get("cpu") or "an unrecorded processor", []).append(row["notebook"][:2])
    parts = [f"{cpu} for {', '.join(sorted(stems))}" for cpu, stems in sorted(lessons.items())]
    return f"The {profile} minutes were measured on 2 cores of: " + "; ".join(parts) + "." if parts else ""


def code_and_tests(stem: str) -> str:
    """Markdown links to the package modules a lesson imports (the basics of ``core`` left out) and their tests."""
    modules = [m for m in imports.lesson_imports().get(stem[:2], []) if not m.startswith("transfer_utils.core")]
    cells = []
    for module in modules:
        path = imports.module_path(module).relative_to(REPO_ROOT).as_posix()
        label = module.removeprefix("transfer_utils.")
        found = imports.tests_of(module)
        leaf = module.rsplit(".", 1)[-1]
        named = [t for t in found if t.stem.endswith(leaf)]  # test_<leaf>.py, test_<package>_<leaf>.py
        tests = ", ".join(f"[{t.stem.removeprefix('test_')}]({t.relative_to(REPO_ROOT).as_posix()})"
                          for t in (named or found))
        cells.append(f"[{label}]({path})" + (f" (tests: {tests})" if tests else ""))
    return "<br>".join(cells) or "–"


def lesson_rows() -> list[dict[str, str]]:
    """The lesson map: every curriculum row with its status, code, tests and measured minutes per profile."""
    minutes = measured_minutes()
    rows = []
    for info in CURRICULUM:
        landed = (notebooks_dir() / f"{info.stem}.ipynb").exists()
        cell = {p: f"{minutes[(info.stem, p)]:.1f}" if (info.stem, p) in minutes else "–"
                for p in ("smoke", "default")}
        link = f"[{info.stem}](notebooks/{info.stem}.ipynb)" if landed else f"{info.stem} (planned)"
        rows.append({"lesson": link, "title": info.title, "teaches": info.teaches,
                     "code (and tests)": code_and_tests(info.stem) if landed else "–",
                     "learner min (read + exercises)": f"{info.reading_min} + {info.exercise_min}",
                     "smoke min": cell["smoke"], "default min": cell["default"]})
    return rows


def lesson_map_markdown() -> str:
    """The lesson map as a Markdown table."""
    rows = lesson_rows()
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
    return "\n".join(lines + ["", measured_on("default")])


# Each lesson's headline, a format string over the metric names of its committed run (README results table).
HEADLINES: dict[str, str] = {
    "00_setup_and_tour": "{n_labels} labelled critic snippets ({probe_vs_bow_seeds} draws): bag of words "
                         "{bow_accuracy:.3f}, frozen MiniLM + logistic regression {probe_accuracy:.3f}; always "
                         "'fresh' {majority_accuracy:.3f}",
    "01_why_transfer": "best transfer method minus best no-transfer baseline (seed means): {gain_at_64:+.3f} at "
                       "64 labels, {gain_at_256:+.3f} at 256; TF-IDF on all labels {tfidf_all_labels_accuracy:.3f}; "
                       "from-scratch network with {n_max} labels: {scratch_largest_accuracy:.3f}, always 'fresh' {majority_accuracy:.3f}",
    "02_instance_based": "biased selection of scikit-learn digits ({n_seeds} seeds): unweighted "
                         "{target_acc_unweighted:.3f} ± {target_acc_unweighted_std:.3f}, domain-classifier weights "
                         "{target_acc_classifier:.3f}, KMM {target_acc_kmm:.3f}, KLIEP {target_acc_kliep:.3f}, true "
                         "weights {target_acc_true_weights:.3f}, target-trained {target_acc_target_trained:.3f}; "
                         "constant predictor {target_acc_constant:.3f}",
    "03_feature_based": "{n_seeds} seeds; critic snippets → tweets: source-only {text_target_acc_source_only:.3f}, "
                        "CORAL {text_target_acc_coral:.3f}, subspace alignment {text_target_acc_sa:.3f}, TCA "
                        "{text_target_acc_tca:.3f}, tweet-trained {text_target_acc_oracle:.3f}, constant predictor "
                        "{text_target_acc_constant:.3f}; MNIST → photo-blended MNIST: source-only "
                        "{blend_target_acc_source_only:.3f}, subspace alignment {blend_target_acc_sa:.3f}, TCA "
                        "{blend_target_acc_tca:.3f}, CORAL {blend_target_acc_coral:.3f}, target-trained "
                        "{blend_target_acc_oracle:.3f}; CORAL shrinks the text MMD² {text_mmd_before:.3f} → "
                        "{text_mmd_after:.3f}; the true class prior gives {text_target_acc_prior_true:.3f}",
    "04_model_based": "ResNet pretrained on 5 Fashion-MNIST classes → the other 5, {k} labels per class, {seeds} "
                      "seeds, picked on validation: {picked_on_validation[0]} ({picked_target_acc:.3f} test); target accuracy (source accuracy kept, from {source_acc_before:.3f}) "
                      "— head only {strategies[0][target_acc]:.3f} ({strategies[0][source_acc_after]:.3f}), "
                      "gradual unfreezing {strategies[1][target_acc]:.3f} ({strategies[1][source_acc_after]:.3f}), "
                      "full fine-tuning {strategies[2][target_acc]:.3f} ({strategies[2][source_acc_after]:.3f}), "
                      "L2-SP {strategies[5][target_acc]:.3f} ({strategies[5][source_acc_after]:.3f}); shared "
                      "encoder {joint_target_acc:.3f} target / {joint_source_acc:.3f} source with {shared_params:,} "
                      "vs {separate_params:,} parameters; constant predictor {target_constant_acc:.3f}",
    "05_domain_adaptation": "MNIST → photo-blended MNIST, equal steps, {n_seeds} seeds: "
                            "source-only {blend_source_only:.3f}, DANN {blend_dann:.3f}, Deep CORAL "
                            "{blend_deep_coral:.3f}, target-trained {blend_oracle:.3f} (DANN closes "
                            "{blend_gap_closed_dann:.0%} of the gap on the mean); MNIST → scikit-learn digits: "
                            "source-only {digits_source_only:.3f}, DANN {digits_dann:.3f}, Deep CORAL "
                            "{digits_deep_coral:.3f}, target-trained {digits_oracle:.3f}; constant predictor "
                            "{blend_target_constant_acc:.3f}",
    "06_attention_math": "attention by hand vs MiniLM's own, {bert_layers_checked} layers × {bert_heads_per_layer} "
                         "heads: max abs diff {bert_attention_max_abs_diff:.1e}; softmax entropy "
                         "{scaled_softmax_entropy:.2f} nats with the √d_k scale, {unscaled_softmax_entropy:.2f} "
                         "without; attention time grows like n^{time_exponent:.2f}",
    "07_bert_fine_tuning": "MiniLM fine-tuned on all {n_train:,} snippets ({train_steps} steps, {train_seconds:.0f} s "
                           "of training): test accuracy {test_accuracy:.3f} (always 'fresh' {majority_accuracy:.3f}), "
                           "F1 of 'fresh' {test_f1:.3f} (always 'fresh' {constant_f1:.3f}); frozen encoder "
                           "{frozen_test_accuracy:.3f}; save → reload logit diff {reload_max_abs_logit_diff:.1e}; "
                           "on {compare_train:,}-snippet jobs ({compare_seeds} draws), course loop "
                           "{course_loop_test_accuracy:.3f} vs frozen encoder {frozen_small_test_accuracy:.3f}; "
                           "`Trainer` on the first draw {trainer_test_accuracy:.3f} in {trainer_seconds:.0f} s "
                           "(course loop {course_loop_seconds:.0f} s)",
    "08_resnet_image_transfer": "part A, EfficientNet-Lite0 → Fashion-MNIST, {k_a} labels per class, {seeds_a} seeds: raw "
                                "pixels {acc_raw_pixels:.3f}, frozen features {acc_feature_extractor:.3f}, "
                                "fine-tuning {acc_finetune:.3f}, scratch {acc_scratch:.3f}, constant predictor "
                                "{acc_constant_a:.3f}; part B, layer transfer from a ResNet pretrained on 5 classes "
                                "({seeds_b} seeds): scratch {acc_scratch_b:.3f}, fine-tune all {acc_finetune_b:.3f}, "
                                "blocks 1 / 2 / 3 / 4 frozen {acc_by_frozen_blocks[0]:.3f} / "
                                "{acc_by_frozen_blocks[1]:.3f} / {acc_by_frozen_blocks[2]:.3f} / "
                                "{acc_by_frozen_blocks[3]:.3f}",
    "09_distillation_multitask_relations": "{n_seeds} seeds, {n_small} gold labels + {n_transfer:,} unlabelled "
                                           "snippets: teacher (fine-tuned MiniLM) {teacher_acc:.3f}; student CNN "
                                           "({size_ratio:.0f}× smaller, {speedup:.0f}× faster) without teacher "
                                           "{student_scratch_acc:.3f}, distilled {student_kd_acc:.3f}, relational KD "
                                           "{student_rkd_acc:.3f}; multi-task (+ BBC topics) {multitask_acc:.3f} vs "
                                           "single-task {singletask_acc:.3f}; BCE gradient vs autograd "
                                           "{bce_grad_max_abs_diff:.0e}; constant predictor {constant_acc:.3f}",
    "10_applications": "{n_seeds} seeds each: intent routing ({shots} labelled questions per intent, ChatterBot topics) "
                       "MiniLM {routing_acc_minilm:.3f} vs TF-IDF {routing_acc_tfidf:.3f}, commonest intent "
                       "{routing_constant_acc:.3f}; with the validation threshold {handover_answered_acc:.3f} accurate "
                       "at coverage {handover_coverage:.3f} (answering all {answer_all_acc:.3f}); critic-trained "
                       "sentiment on tweets {tweet_acc:.3f} (constant {tweet_constant_acc:.3f}), negative-share error "
                       "classify-and-count {share_mae_cc:.3f} vs adjusted with tweet rates {share_mae_acc_target:.3f}, "
                       "alert precision {alert_precision:.3f} / recall {alert_recall:.3f}; BBC same-topic "
                       "precision@{k}: full text MiniLM {p_at_k_minilm_full:.3f} vs TF-IDF {p_at_k_tfidf_full:.3f}, "
                       "titles only {p_at_k_minilm_title:.3f} vs {p_at_k_tfidf_title:.3f} (commonest topic "
                       "{p_at_k_constant:.3f})",
    "11_parameter_efficient_fine_tuning": "MiniLM on critic snippets, {steps} steps of {batch_size} each, "
                                          "{seeds} seeds, learning rates chosen on validation: full fine-tuning "
                                          "{full_accuracy:.3f} ± {full_accuracy_std:.3f}, LoRA r={lora_rank} "
                                          "{lora_accuracy:.3f} ± {lora_accuracy_std:.3f} training {lora_share:.2%} "
                                          "of the parameters (adapter {adapter_kb:.0f} KiB), head only "
                                          "{head_accuracy:.3f} ± {head_accuracy_std:.3f}; (IA)³ {ia3_accuracy:.3f} "
                                          "(one seed); merge changes logits by {merge_max_abs_logit_diff:.0e}; "
                                          "constant predictor {constant_accuracy:.3f}",
    "12_scaling_out": "MiniLM fine-tuned through `accelerate` on {n_train} snippets ({steps_per_run} steps, {n_seeds} "
                      "seeds): 1 process {one_process_mean_accuracy:.3f} vs {world_size} processes (gloo, world size "
                      "checked) {two_process_mean_accuracy:.3f}, constant predictor {constant_accuracy:.3f}; without "
                      "dropout the step losses differ by at most {exact_max_loss_diff:.1e}; bf16 "
                      "{bf16_mean_accuracy:.3f} at {bf16_speedup:.2f}× the float32 speed; on {cpu_count} cores {world_size} "
                      "processes run at {speedup:.2f}× (all-reduce of {gradient_megabytes:.0f} MB: "
                      "{allreduce_seconds:.2f} s per step); resumed run vs uninterrupted weight diff "
                      "{resume_max_weight_diff:.1e}",
}


def headline(stem: str) -> str:
    """A lesson's headline result, filled in from the metrics of its committed run."""
    metrics = authoring.committed_metrics(notebooks_dir() / f"{stem}.ipynb")["metrics"]
    try:
        return HEADLINES[stem].format(**metrics)
    except KeyError as missing:
        raise KeyError(f"{stem}'s committed metrics lack {missing}: update HEADLINES in course/catalog.py") from None


def results_markdown() -> str:
    """The README's results table: one generated headline per lesson that has landed."""
    rows = ["| lesson | result (committed default run) |", "|---|---|"]
    rows += [f"| {info.stem[:2]} | {headline(info.stem)} |" for info in CURRICULUM if info.stem in HEADLINES
             and (notebooks_dir() / f"{info.stem}.ipynb").exists()]
    return "\n".join(rows)


BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"
BENCH_RESULTS = ("training_loop", "fine_tuning_profile", "fine_tuning_settings", "cnn_layout")  # bench scripts whose results carry a headline


def bench_markdown() -> str:
    """The README's bench lines: each result file's ``**Headline.**`` sentence, with the script that wrote it."""
    lines = []
    for name in BENCH_RESULTS:
        path = REPO_ROOT / "bench" / "results" / f"{name}.md"
        found = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("**Headline.**")]
        if not found:
            raise ValueError(f"{path} has no **Headline.** line: rerun python bench/{name}.py")
        sentence = found[0].removeprefix("**Headline.**").strip()
        lines.append(f"- `bench/{name}.py` → [bench/results/{name}.md](bench/results/{name}.md): {sentence}")
    return "\n".join(lines)


def _replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``body``."""
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no {start} ... {end} markers in the file")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def update_readme(readme: Path = REPO_ROOT / "README.md") -> bool:
    """Rewrite the README's lesson map and results table between their markers (and the instructor
    guide's time table); True when something changed."""
    text = readme.read_text(encoding="utf-8")
    new = _replace_block(text, MAP_START, MAP_END, lesson_map_markdown())
    new = _replace_block(new, RESULTS_START, RESULTS_END, results_markdown())
    new = _replace_block(new, BENCH_START, BENCH_END, bench_markdown())
    if new != text:
        atomic_write_text(readme, new)
    return update_guide() or new != text


GUIDE = REPO_ROOT / "docs" / "instructor_guide.md"
GUIDE_START, GUIDE_END = "<!-- lesson-times:start -->", "<!-- lesson-times:end -->"


def guide_times_markdown() -> str:
    """The instructor guide's table: a learner's reading and exercise minutes beside the machine's."""
    minutes = measured_minutes()
    rows = ["| lesson | reading | exercises | machine, default profile | machine, smoke profile |",
            "|---|---|---|---|---|"]
    for info in CURRICULUM:
        machine = [f"{minutes[(info.stem, p)]:.1f} min" if (info.stem, p) in minutes else "–" for p in ("default", "smoke")]
        rows.append(f"| [{info.stem[:2]} · {info.title}](../notebooks/{info.stem}.ipynb) | {info.reading_min} min | "
                    f"{info.exercise_min} min | {machine[0]} | {machine[1]} |")
    total_read, total_ex = sum(i.reading_min for i in CURRICULUM), sum(i.exercise_min for i in CURRICULUM)
    rows.append(f"| all lessons | {total_read} min | {total_ex} min | "
                f"{sum(v for (s, p), v in minutes.items() if p == 'default'):.0f} min | "
                f"{sum(v for (s, p), v in minutes.items() if p == 'smoke'):.0f} min |")
    return "\n".join(rows)


def update_guide(guide: Path = GUIDE) -> bool:
    """Rewrite the instructor guide's time table between its markers; True when it changed."""
    text = guide.read_text(encoding="utf-8")
    new = _replace_block(text, GUIDE_START, GUIDE_END, guide_times_markdown())
    if new != text:
        atomic_write_text(guide, new)
    return new != text


def time_line(stem: str) -> str:
    """The measured-minutes line that opens a lesson."""
    minutes = measured_minutes()
    smoke, default = (minutes.get((stem, p)) for p in ("smoke", "default"))
    info = next(i for i in CURRICULUM if i.stem == stem)
    learner = f"**Time.** for you ≈ {info.reading_min} min reading + {info.exercise_min} min exercises"
    if smoke is None or default is None:
        return f"{learner}; machine time not measured yet (run `python bench/lesson_times.py`)."
    return (f"{learner}; for the machine, smoke ≈ {smoke:.1f} min · default ≈ {default:.1f} min on a 2-core CPU "
            "(measured by `bench/lesson_times.py`).")


def update_time_lines(stems: list[str] | None = None) -> list[Path]:
    """Rewrite the **Time.** line in each lesson's source and committed notebook from the measurements."""
    import nbformat

    changed = []
    for info in CURRICULUM:
        if stems is not None and info.stem not in stems:
            continue
        line = time_line(info.stem)
        source = notebooks_dir() / "src" / f"{info.stem}.py"
        if source.exists():
            text = source.read_text(encoding="utf-8")
            new = TIME_LINE.sub(line, text, count=1)
            if new != text:
                atomic_write_text(source, new)
                changed.append(source)
        notebook_path = notebooks_dir() / f"{info.stem}.ipynb"
        if notebook_path.exists():
            notebook = nbformat.read(notebook_path, as_version=4)
            cell = next((c for c in notebook.cells if c.cell_type == "markdown" and TIME_LINE.search(c.source)), None)
            if cell is not None and TIME_LINE.search(cell.source).group(0) != line:
                cell.source = TIME_LINE.sub(line, cell.source, count=1)
                atomic_write_text(notebook_path, nbformat.writes(notebook))
                changed.append(notebook_path)
    return changed
