"""The synthetic world of the control, built with SAELens's toolkit, and the modifiers that mimic masking.

`build_world` gives a `FeatureDictionary` (true feature directions) and the clean `ActivationGenerator`
(`hierarchy_modifier` over the letter -> word and contextual hierarchies). `training_generator` adds one of three
masking-like modifiers, each a callable on the feature-activation tensor `[batch, num_features]` run after the
hierarchy:

- `Replacement`: with probability p a sample's features are all replaced by the mask feature (token masking at
  a masked position: parent and child vanish together); `replacement_matched_count` is the same modifier trained
  1/(1-p) times longer (`ModifierConfig.sample_multiplier`), so it sees as many real samples as the unmodified SAE;
- `ContextDropout`: each contextual feature of a sample is dropped with probability p while the token-intrinsic
  ones stay (what masking a neighbour can do to an unmasked position);
- `CooccurrenceBreaking`: where a child fires, its parent is switched off with probability p (the idealised
  mechanism: a child firing without its parent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from sae_lens.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    HierarchyNode,
    hierarchy_modifier,
)

from research.absorption_control.config import (
    MATCHED_COUNT_REPLACEMENT,
    NUM_LETTERS,
    FeatureHierarchy,
    ModifierConfig,
    WorldConfig,
    check_probability,
)

Modifier = Callable[[torch.Tensor], torch.Tensor]


def hierarchy_nodes(hierarchy: FeatureHierarchy) -> list[HierarchyNode]:
    """SAELens `HierarchyNode` trees of a (validated) hierarchy; children are mutually exclusive."""

    def node(feature: int) -> HierarchyNode:
        kids = [node(child) for child in hierarchy.children.get(feature, ())]
        return HierarchyNode(feature, children=kids, mutually_exclusive_children=len(kids) > 1)

    return [node(root) for root in hierarchy.roots]


def firing_probabilities(world: WorldConfig) -> torch.Tensor:
    """Per-feature firing probability, shape [num_features] (children: given their parent; mask: 0)."""
    probabilities = torch.zeros(world.num_features)
    probabilities[:NUM_LETTERS] = world.letter_probability
    probabilities[NUM_LETTERS : NUM_LETTERS + world.num_words] = torch.tensor(
        world.word_probabilities()
    ).repeat(NUM_LETTERS)
    contextual = world.contextual_hierarchy()
    probabilities[world.contextual_features()] = world.background_probability
    probabilities[list(contextual.children)] = world.context_parent_probability
    probabilities[list(contextual.parent_of)] = world.context_child_probability
    return probabilities


def clean_modifier(world: WorldConfig) -> Modifier:
    """The hierarchy constraints: a token is at most one letter (an organising root with mutually exclusive
    letter children), each letter at most one word, contextual children only with their parent."""
    letters = HierarchyNode(
        None, children=hierarchy_nodes(world.intrinsic_hierarchy()), mutually_exclusive_children=True
    )
    return hierarchy_modifier([letters, *hierarchy_nodes(world.contextual_hierarchy())])


@dataclass(frozen=True)
class Replacement:
    """With probability `p` per sample, every feature is replaced by `mask_feature` (magnitude 1)."""

    p: float
    mask_feature: int

    def __post_init__(self) -> None:
        check_probability("replacement p", self.p, upper_open=True)

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        replaced = torch.rand(activations.shape[0], device=activations.device) < self.p
        result = activations.clone()
        result[replaced] = 0
        result[replaced, self.mask_feature] = 1
        return result


@dataclass(frozen=True)
class ContextDropout:
    """Each feature in `contextual_features` is dropped with probability `p`, independently per sample."""

    p: float
    contextual_features: tuple[int, ...]

    def __post_init__(self) -> None:
        check_probability("context_dropout p", self.p, upper_open=True)

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        index = torch.tensor(self.contextual_features, device=activations.device)
        keep = torch.rand(activations.shape[0], len(index), device=activations.device) >= self.p
        result = activations.clone()
        result[:, index] = result[:, index] * keep
        return result


@dataclass(frozen=True)
class CooccurrenceBreaking:
    """Where a child fires, its parent is switched off with probability `p` (children, parents: aligned)."""

    p: float
    children: tuple[int, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        check_probability("cooccurrence_breaking p", self.p, upper_open=True)
        if len(self.children) != len(self.parents):
            raise ValueError("children and parents must be aligned")

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        children = torch.tensor(self.children, device=activations.device)
        parents = torch.tensor(self.parents, device=activations.device)
        child_fires = activations[:, children] > 0
        broken = child_fires & (torch.rand(child_fires.shape, device=activations.device) < self.p)
        rows, columns = broken.nonzero(as_tuple=True)
        result = activations.clone()
        result[rows, parents[columns]] = 0
        return result


def training_modifier(world: WorldConfig, modifier: ModifierConfig) -> Modifier:
    """The masking-like modifier `modifier.kind` at probability `modifier.p` (breaking acts on both hierarchies)."""
    if modifier.kind in ("replacement", MATCHED_COUNT_REPLACEMENT):
        return Replacement(modifier.p, world.mask_feature)
    if modifier.kind == "context_dropout":
        return ContextDropout(modifier.p, tuple(world.contextual_features()))
    parent_of = world.intrinsic_hierarchy().parent_of | world.contextual_hierarchy().parent_of
    return CooccurrenceBreaking(modifier.p, tuple(parent_of), tuple(parent_of.values()))


def build_generator(world: WorldConfig, modifier: ModifierConfig | None = None) -> ActivationGenerator:
    """The clean generator, or the training one with `modifier` applied after the hierarchy."""
    modifiers = [clean_modifier(world)]
    if modifier is not None:
        modifiers.append(training_modifier(world, modifier))
    return ActivationGenerator(
        world.num_features,
        firing_probabilities(world),
        std_firing_magnitudes=world.magnitude_std,
        modify_activations=modifiers,
    )


def build_feature_dictionary(world: WorldConfig, hidden_dim: int, seed: int) -> FeatureDictionary:
    """Unit feature directions, shape [num_features, hidden_dim], orthogonalised as far as `hidden_dim` allows."""
    return FeatureDictionary(world.num_features, hidden_dim, seed=seed)
