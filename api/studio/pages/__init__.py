"""One module per studio page; each has its own ``router`` (see ``brandloop.api.studio``)."""
