"""How a chat conversation reaches a society that is asked one question.

An organisation is given one task (the question) and writes its own prompts for its
members. A served society is given a conversation, which maps onto that as follows:

- the last message (it must be the user's) is the society's question;
- the client's system and developer messages are added to every member's system message,
  after the member's own role;
- the earlier user and assistant turns are kept as messages: every request a member is
  sent carries them, in order, between its system message and its own first prompt.

So every member of every organisation reads the whole conversation as real turns, and
nothing is flattened into the question. The injection happens on the way to the backend
(`ConversationBackend`), so the run log records the prompts the organisation wrote and,
once per run, the conversation itself (an event of kind "conversation").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from minsky.backends.base import Backend
from minsky.messages import ChatReply, ChatRequest, Message
from minsky.serve.protocol import ApiError, ChatMessage


@dataclass(frozen=True)
class Conversation:
    """A conversation split into what a society reads: instructions, turns, question."""

    question: str
    instructions: str = ""
    history: list[Message] = field(default_factory=list)

    @classmethod
    def from_messages(cls, messages: list[ChatMessage]) -> Conversation:
        last = messages[-1]
        if last.role != "user":
            raise ApiError(400, f"'messages[{len(messages) - 1}].role': the last message "
                                f"must be the user's (got {last.role!r})",
                           param=f"messages[{len(messages) - 1}].role")
        if not last.text.strip():
            raise ApiError(400, f"'messages[{len(messages) - 1}].content': the question is "
                                "empty", param=f"messages[{len(messages) - 1}].content")
        instructions = "\n\n".join(m.text for m in messages if m.role in ("system", "developer")
                                   and m.text.strip())
        history = [Message(m.role, m.text) for m in messages[:-1]  # type: ignore[arg-type]
                   if m.role in ("user", "assistant")]
        return cls(last.text, instructions, history)

    @property
    def is_plain(self) -> bool:
        """True when there is nothing to add to the members' prompts."""
        return not self.instructions and not self.history

    def apply(self, request: ChatRequest) -> ChatRequest:
        """The member's request with the conversation's instructions and turns added."""
        messages = list(request.messages)
        if messages and messages[0].role == "system":
            system = messages.pop(0)
            if self.instructions:
                system = Message("system", f"{system.content}\n\n{self.instructions}")
            head = [system]
        else:
            head = [Message("system", self.instructions)] if self.instructions else []
        return replace(request, messages=[*head, *self.history, *messages])

    def to_dict(self) -> dict[str, object]:
        return {"instructions": self.instructions,
                "history": [{"role": m.role, "content": m.content} for m in self.history]}


class ConversationBackend(Backend):
    """A shared backend seen through one conversation: every request gets its turns.

    Requests still go to the shared backend, so they batch with every other request in
    flight; only the messages differ.
    """

    def __init__(self, inner: Backend, conversation: Conversation) -> None:
        self.inner = inner
        self.conversation = conversation
        self.name = inner.name
        self.capabilities = inner.capabilities

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        return await self.inner.complete([self.conversation.apply(r) for r in requests])

    def describe(self) -> str:
        return self.inner.describe()
