"""A trained model's card: what anyone needs to score with it using plain transformers + peft.

Written by training into the model folder (before its digests: relevance/model_digests.py):

- `model_card.json`: the facts, for code: the prompt template (with an example filled in) and how it is
  tokenized, which logit means "relevant", the tuned threshold(s), the quantization and dtype settings,
  and the base (`base_model.json`'s record, relevance/modeling/base_reference.py);
- `README.md`: the same for people, with a loading snippet generated for this run's settings (it replaces
  the placeholder card PEFT writes). tests/test_portable_model.py runs that snippet and matches
  `relevance.predict`'s scores.

Everything is taken from what training used (the run config, the loaded tokenizer and head), never
restated by hand, so the card cannot drift from the code that scores.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from relevance.modeling.heads import head_class

CARD_FILE = "model_card.json"
README_FILE = "README.md"
CARD_FORMAT = 1
LABELS = ["not relevant", "relevant"]  # every head's two logits, in this order (relevance/modeling/heads.py)
RELEVANT_INDEX = LABELS.index("relevant")
EXAMPLE_QUERY = "running shoes"
EXAMPLE_TARGETS = {"category_paths": "sports & entertainment,sneakers,running shoes",
                   "item_titles": "Xiaomo Running Shoes Breathable Mesh Lightweight Black"}


def example_target(task: DictConfig) -> str:
    """A target of the task's kind for the filled-in example (a placeholder naming the field otherwise)."""
    return EXAMPLE_TARGETS.get(str(OmegaConf.select(task, "demo_targets")), f"<the row's {task.target_field}>")


def input_strategy_names(cfg: DictConfig) -> list[str]:
    """The run's strategies that rewrite model inputs (e.g. the English pivot): scoring must do the same."""
    from relevance.augment.base import strategy_class

    return [str(name) for name in (cfg.get("augment") or {}) if strategy_class(str(name)).rewrites_inputs()]


def card_facts(cfg: DictConfig, tokenizer, head, thresholds, threshold_file: dict, base: dict,
               compute_dtype: str, weights_dtype: str) -> dict:
    """The card's content (see the module docstring). `cfg` is the run's resolved config."""
    task, head_cfg, quant = cfg.task, cfg.head, cfg.quant
    suffix = OmegaConf.select(head_cfg, "answer_suffix", default=None)
    example = {"query": EXAMPLE_QUERY, "target": example_target(task)}
    example["text"] = str(task.prompt).format(**example) + (suffix or "")
    output = {"head": str(head_cfg.name), "labels": LABELS, "relevant_index": RELEVANT_INDEX,
              "score": "softmax over the two logits; P(relevant) is index 1"}
    head_type = head_class(str(head_cfg.name))  # each head says what its two logits are (modeling/heads/)
    output.update(head.describe_output(), from_pretrained=dict(head_type.backbone_kwargs))
    model_class = str(cfg.model[head_type.backbone_class_key])
    bits = OmegaConf.select(quant, "bits", default=None)
    return {
        "format": CARD_FORMAT,
        "task": {"name": str(task.name), "key": str(task.key), "target_field": str(task.target_field)},
        "input": {
            "template": str(task.prompt),
            "fields": {"query": "the row's origin_query, stripped",
                       "target": f"the row's {task.target_field}, stripped"},
            "answer_suffix": suffix,
            "max_length": int(cfg.model.max_length),
            "tokenization": ("tokenize the filled template with this folder's tokenizer (its special tokens added), "
                             "truncated to max_length minus the answer suffix's tokens, then append the suffix's "
                             "tokens (no special tokens); one row per call, or pad on padding_side"),
            "padding_side": str(head_cfg.padding_side),
            "pad_token": tokenizer.pad_token, "pad_token_id": int(tokenizer.pad_token_id),
            "example": example,
            "input_strategies": input_strategy_names(cfg),
        },
        "output": output,
        "threshold": {"global": float(thresholds.global_threshold),
                      "per_language": {str(k): float(v) for k, v in sorted(thresholds.per_language.items())},
                      "rule": "relevant when the score reaches the row's language's threshold (when listed), "
                              "else the global one",
                      "tuned_on": threshold_file.get("tuned_on"), "value": threshold_file.get("value"),
                      "mode": threshold_file.get("mode")},
        "precision": {
            "quantization": None if bits is None else {
                "bits": int(bits), "quant_type": OmegaConf.select(quant, "quant_type", default=None),
                "double_quant": OmegaConf.select(quant, "double_quant", default=None)},
            "compute_dtype": compute_dtype, "weights_dtype": weights_dtype,
            "prepare_model_for_kbit_training": bits is not None,
            "autocast": compute_dtype != "float32"},
        "model_class": model_class,
        "adapter": str(cfg.peft.name) == "lora",
        "base": base,
    }


def write_model_card(model_dir: Path, facts: dict) -> None:
    model_dir = Path(model_dir)
    (model_dir / CARD_FILE).write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (model_dir / README_FILE).write_text(readme(facts), encoding="utf-8")


# -- the README --------------------------------------------------------------------------------------

def base_line(base: dict) -> str:
    """The snippet's `base = ...` line: the hub id, or the folder `relevance.modeling.base_reference` builds
    (`out_dir=base`: `base/<name>-<key>`, as `convert_gguf_once` and `build_tiny_model` name it)."""
    kind = base["source"]
    if kind == "hub":
        return f'base = "{base["hub_id"]}"  # from the hub, at revision {base.get("revision")!r}'
    if kind in ("gguf_package", "tiny_random"):
        name = base["model"] if kind == "gguf_package" else "tiny_random"
        folder = f"{name}-{base['digest'].split(':')[-1]}"
        return (f'base = "base/{folder}"  # built by: python -m relevance.modeling.base_reference model_dir=model '
                "out_dir=base")
    return f'base = "{base.get("folder")}"  # a copy of the local folder the run trained on'


def loading_snippet(facts: dict) -> str:
    precision, out, base = facts["precision"], facts["output"], facts["base"]
    compute, quant = precision["compute_dtype"], precision["quantization"]
    auto_class = facts["model_class"].rsplit(".", 1)[-1]
    imports = [f"from transformers import AutoTokenizer, {auto_class}" + (", BitsAndBytesConfig" if quant else "")]
    if facts["adapter"]:
        imports.append("from peft import PeftModel" + (", prepare_model_for_kbit_training" if quant else ""))
    load_args = [f"dtype=torch.{precision['weights_dtype']}"]
    load_args += [f"{key}={value!r}" for key, value in out.get("from_pretrained", {}).items()]
    if quant and quant["bits"] == 4:
        load_args.append(f'quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='
                         f'"{quant["quant_type"]}", bnb_4bit_use_double_quant={bool(quant["double_quant"])}, '
                         f'bnb_4bit_compute_dtype=torch.{compute})')
    elif quant:
        load_args.append("quantization_config=BitsAndBytesConfig(load_in_8bit=True)")
    load_args.append('device_map={"": 0} if torch.cuda.is_available() else None')  # as training placed it
    lines = ["import json", "from pathlib import Path", "", "import torch", *imports, "",
             'model_dir = Path("model")  # this folder: the run\'s `model` artifact']
    if facts["adapter"]:
        lines.append(base_line(base))
        where, revision = "base", (f', revision="{base["revision"]}"' if base.get("revision") else "")
    else:
        where, revision = "model_dir", ""
    lines += ['card = json.loads((model_dir / "model_card.json").read_text())', "",
              "tokenizer = AutoTokenizer.from_pretrained(model_dir)",
              f"model = {auto_class}.from_pretrained(", f"    {where}{revision},",
              *(f"    {arg}," for arg in load_args), ")",
              "model.config.pad_token_id = tokenizer.pad_token_id  # where the classifier pools",
              "model.config.get_text_config().pad_token_id = tokenizer.pad_token_id"]
    if quant:
        lines += ["for module in model.modules():  # bitsandbytes on CPU: no bf16 repacking, as in training",
                  '    if hasattr(module, "support_avx512bf16_for_cpu"):',
                  "        module.support_avx512bf16_for_cpu = False"]
    if facts["adapter"]:
        if quant:
            lines.append("model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  "
                         "# as training prepared it")
        lines.append("model = PeftModel.from_pretrained(model, model_dir)")
    lines += ["model.eval()", "", "",
              "def score(query: str, target: str) -> float:",
              '    """P(relevant) of one row: the card\'s template, its truncation, the relevant logit."""',
              '    text = card["input"]["template"].format(query=query.strip(), target=target.strip())',
              '    suffix = tokenizer.encode(card["input"]["answer_suffix"] or "", add_special_tokens=False)',
              '    ids = tokenizer(text, truncation=True, max_length=card["input"]["max_length"] - len(suffix))'
              '["input_ids"] + suffix',
              "    batch = torch.tensor([ids], device=model.device)",
              f"    with torch.inference_mode(), torch.autocast(batch.device.type, dtype=torch.{compute}, "
              f"enabled={compute != 'float32'}):"]
    if "positive_token_id" not in out:  # the head's own logits (a sequence classifier)
        lines.append("        logits = model(input_ids=batch, attention_mask=torch.ones_like(batch)).logits")
    else:
        lines += ["        last = model(input_ids=batch, attention_mask=torch.ones_like(batch), logits_to_keep=1)"
                  ".logits[:, -1]",
                  '        logits = last[:, [card["output"]["negative_token_id"], '
                  'card["output"]["positive_token_id"]]]']
    lines += ['    return torch.softmax(logits.float(), dim=-1)[0, card["output"]["relevant_index"]].item()', "", "",
              'example = card["input"]["example"]',
              'p = score(example["query"], example["target"])',
              'print(f"{p:.4f}", "relevant" if p >= card["threshold"]["global"] else "not relevant")']
    return "\n".join(lines)


def readme(facts: dict) -> str:
    task, inp, out, thr, precision, base = (facts[k] for k in ("task", "input", "output", "threshold", "precision",
                                                                "base"))
    front = ["---", "library_name: peft" if facts["adapter"] else "library_name: transformers"]
    if base["source"] == "hub":
        front.append(f"base_model: {base['hub_id']}")
    front += ["tags:", "- relevance", "- text-classification", "---", ""]
    quant = precision["quantization"]
    quant_text = ("none (the base in " + precision["weights_dtype"] + ")" if not quant else
                  f"{quant['bits']}-bit bitsandbytes" + (f" {quant['quant_type']}, double quantization "
                                                           f"{quant['double_quant']}" if quant["bits"] == 4 else ""))
    per_language = ", ".join(f"{k} {v:.4f}" for k, v in thr["per_language"].items()) or "none"
    strategies = inp["input_strategies"]
    lines = [
        *front,
        f"# {task['name']} relevance model: {base['model']}" + (" + LoRA" if facts["adapter"] else ""),
        "",
        f"Says whether a target (`{task['target_field']}`) is relevant to a search query. Trained with the project "
        "`relevance`; this card is written by training (`model_card.json` holds the same facts for code).",
        "",
        "## Base model",
        "",
        *base_lines(base),
        "",
        "## Input: the prompt template",
        "",
        "```text", inp["template"], "```",
        "",
        f"`{{query}}` is {inp['fields']['query']}; `{{target}}` is {inp['fields']['target']}."
        + (f" Answer suffix, appended after truncation: `{json.dumps(inp['answer_suffix'])}`."
           if inp["answer_suffix"] else ""),
        f"Tokenization: {inp['tokenization']} (max_length {inp['max_length']}, padding side {inp['padding_side']}, "
        f"pad token `{inp['pad_token']}` = id {inp['pad_token_id']}).",
        "",
        f"Example, filled in (query `{inp['example']['query']}`, target `{inp['example']['target']}`):",
        "",
        "```text", inp["example"]["text"], "```",
        "",
    ]
    if strategies:
        lines += [f"**Input strategies:** this run rewrote its inputs with {', '.join(strategies)} (e.g. an English "
                  "pivot of the query inserted after it); `relevance.predict` does the same; plain loading must do so "
                  "too, or its scores differ.", ""]
    lines += [
        "## Output: which logit means relevant",
        "",
        f"Head `{out['head']}`: {out['logits']}. Label order {out['labels']}: index {out['relevant_index']} means "
        f"**relevant**; the score is {out['score']}."
        + (f" Tokens: negative `{json.dumps(out['negative_token'])}` (id {out['negative_token_id']}), positive "
           f"`{json.dumps(out['positive_token'])}` (id {out['positive_token_id']})." if "positive_token_id" in out
           else ""),
        "",
        "## Threshold",
        "",
        f"Global threshold **{thr['global']:.6f}** (tuned for {thr['tuned_on']} on dev: {thr['value']}, mode "
        f"{thr['mode']}); per language: {per_language}. A row is {thr['rule']}.",
        "",
        "## Precision",
        "",
        f"Quantization: {quant_text}. Compute dtype **{precision['compute_dtype']}**"
        + (" (every forward under autocast)" if precision["autocast"] else "")
        + f"; other weights in {precision['weights_dtype']}"
        + ("; the quantized base prepared with peft's `prepare_model_for_kbit_training` (norms in fp32), as in "
           "training" if precision["prepare_model_for_kbit_training"] else "") + ". Scores were tuned in this "
        "dtype: another one moves them (and predictions near the threshold).",
        "",
        "## Loading with plain transformers + peft",
        "",
        "```python", loading_snippet(facts), "```",
        "",
        "Scoring rows one at a time gives the scores `relevance.predict` gives, up to the last bits "
        "(predict pads rows in batches; in bf16 padding moves a score slightly).",
        "",
    ]
    return "\n".join(lines)


def base_lines(base: dict) -> list[str]:
    kind = base["source"]
    if kind == "hub":
        return [f"`{base['hub_id']}` from the Hugging Face hub, revision `{base.get('revision')}`."]
    materialise = ("Rebuild it with `python -m relevance.modeling.base_reference model_dir=<this folder> "
                   "out_dir=<folder>` (it checks each file against the SHA-256s in `base_model.json`).")
    if kind == "gguf_package":
        return [f"The GGUF file `{base['gguf_file']}` (SHA-256 `{base['gguf_sha256']}`) of the PyPI package "
                f"`{base['package']}=={base['version']}`, dequantized to float32 safetensors with "
                f"{', '.join(f'{k} {v}' for k, v in base['converted_with'].items())}.", "", materialise]
    if kind == "tiny_random":
        return [f"A tiny random `{base['spec'].get('architecture')}` test model (key `{base['key']}`), built from "
                f"the spec in `base_model.json` with {', '.join(f'{k} {v}' for k, v in base['built_with'].items())}.",
                "", materialise]
    return [f"The local folder `{base.get('folder')}` of the machine that trained it: copy it along, it cannot be "
            "rebuilt from a record."]
