// The chat template in Jinja, as Hugging Face tokenizers carry it. Informational: rendering in the
// project is done by src/chat/render.ts, which this string must describe exactly.

/** Jinja chat template equivalent to renderChat (Qwen3 format, non-thinking generation prompt). */
export const CHAT_TEMPLATE_JINJA =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}" +
  "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' }}" +
  "{%- endif %}";
