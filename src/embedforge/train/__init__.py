"""The trainer, its tasks, distributed helpers and the recipe-to-parts builders."""
