"""What a model is to m1eval: presets with their sampling and per-task prompt protocols
(``presets``), the chat-template rendering of a prompt (``prompts``), and the embedded real
model converted from PyPI's GGUF wheel (``embedded``)."""
