/** A chat message as role prompts are written; rendered to tokens by src/chat/render.ts. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
