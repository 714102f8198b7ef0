// Renders chat messages in the Qwen3 non-thinking format. Every role prompt of the project goes
// through here, so rollouts, demonstrations and evaluation see byte-identical prompts.
import type { Tokenizer } from '../tokenizer/types.js';
import { SPECIAL_TOKEN_TEXT } from '../tokenizer/types.js';
import type { ChatMessage } from './message.js';

/** Options of renderChat / renderChatTokens. */
export interface RenderOptions {
  /** Append the assistant header with an empty think block (what the model completes). */
  addGenerationPrompt: boolean;
}

const { imStart: IM_START, imEnd: IM_END, thinkStart: THINK, thinkEnd: END_THINK } = SPECIAL_TOKEN_TEXT;

/** The generation prompt Qwen3's template emits with enable_thinking=False. */
export const GENERATION_PROMPT = `${IM_START}assistant\n${THINK}\n\n${END_THINK}\n\n`;

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);

/** The chat as text: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then the generation prompt. */
export function renderChat(messages: readonly ChatMessage[], opts: RenderOptions): string {
  let out = '';
  for (const m of messages) {
    checkRole(m.role);
    out += `${IM_START}${m.role}\n${m.content}${IM_END}\n`;
  }
  if (opts.addGenerationPrompt) out += GENERATION_PROMPT;
  return out;
}

/**
 * The chat as token ids. Special tokens come only from the template: special-token text inside a
 * message's content is encoded as plain bytes, so content cannot forge a turn boundary. For content
 * without such text this equals tokenizer.encode(renderChat(...), {allowSpecial: true}).
 */
export function renderChatTokens(tokenizer: Tokenizer, messages: readonly ChatMessage[], opts: RenderOptions): Int32Array {
  const sp = tokenizer.specials;
  const pieces: (number | string)[] = [];
  for (const m of messages) {
    checkRole(m.role);
    pieces.push(sp.imStart, `${m.role}\n${m.content}`, sp.imEnd, '\n');
  }
  if (opts.addGenerationPrompt) pieces.push(sp.imStart, 'assistant\n', sp.thinkStart, '\n\n', sp.thinkEnd, '\n\n');
  return joinPieces(tokenizer, pieces);
}

/** The text an assistant completion is trained on: the content followed by the stop token. */
export function renderCompletion(content: string): string {
  return content + IM_END;
}

/** Token ids of a completion: the content (specials as plain text) then `<|im_end|>`. */
export function renderCompletionTokens(tokenizer: Tokenizer, content: string): Int32Array {
  return joinPieces(tokenizer, [content, tokenizer.specials.imEnd]);
}

function joinPieces(tokenizer: Tokenizer, pieces: readonly (number | string)[]): Int32Array {
  // Adjacent text pieces are encoded together so multi-byte tokens match as in one encode() call.
  const chunks: Int32Array[] = [];
  let text = '';
  const flush = (): void => {
    if (text) chunks.push(tokenizer.encode(text));
    text = '';
  };
  for (const p of pieces) {
    if (typeof p === 'string') {
      text += p;
    } else {
      flush();
      chunks.push(Int32Array.of(p));
    }
  }
  flush();
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Int32Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function checkRole(role: string): void {
  if (!ROLES.has(role)) throw new Error(`renderChat: unknown role ${JSON.stringify(role)}`);
}
