"""What the categorical SAC agents share: action-space helpers, actor/critic networks, the base algorithm."""
